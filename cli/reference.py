"""The configuration reference (docs/configuration.md), generated from the parser itself so
that it cannot drift from what the command accepts: ``python hack/gen_config_docs.py``."""

from __future__ import annotations

import argparse

from kube.flags import Flag, FlagAction, declared_flags, show_default, subcommands

DOCUMENTED = ("serve", "controller")

INTRODUCTION = """\
# Configuration reference

<!-- Generated from the command's parser by hack/gen_config_docs.py: do not edit by hand.
     A unit test (tests/unit/cli/test_reference.py) fails when it is stale. -->

`image-registry-webhook serve` runs the admission webhooks and the PushReview API;
`image-registry-webhook controller` runs the reconcilers. `image-registry-webhook --version`
prints the version, `image-registry-webhook COMMAND --help` the flags below.

Every flag can also be set with an environment variable. A flag on the command line wins
over the variable, the variable over the default; a variable that is empty counts as unset.

- **Booleans**: `--flag` alone means true, `--flag=false` turns it off. Flags and variables
  take `true`, `false`, `1`, `0`, `yes` or `no` (any case) and refuse anything else.
- **Addresses**: `host:port`, `:port` (every IPv4 interface) or `[::]:port` (IPv6); `0`
  turns the listener off.
- **Repeatable flags** are given once per value; their variable is a comma-separated list.
- **Deprecated names** still work and are logged once, as a warning, at start.
"""


def cell(text: str) -> str:
    """``text`` safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _code(items: list[str] | tuple[str, ...]) -> str:
    return ", ".join(f"`{item}`" for item in items)


def _row(flag: Flag) -> str:
    option = f"`{flag.option}`" + (" (repeatable)" if flag.repeatable else "")
    current = [name for name in flag.env_vars if not flag.is_deprecated_env(name)]
    default = show_default(flag.default)
    return (
        f"| {option} | {_code(current)} | {f'`{default}`' if default else ''} | {cell(flag.help)} |"
    )


def _table(flags: list[Flag]) -> list[str]:
    lines = ["| Flag | Environment variable | Default | Description |", "|---|---|---|---|"]
    return lines + [_row(flag) for flag in flags]


def _deprecated(flags: list[Flag]) -> list[str]:
    rows: dict[str, str] = {}
    for flag in flags:
        for alias in flag.deprecated:
            negated = flag.boolean and alias.startswith("--no-")
            rows[alias] = f"{flag.option}=false" if negated else flag.option
        for name in flag.env_vars:
            if flag.is_deprecated_env(name):
                rows[name] = flag.env_vars[0]
    lines = ["| Deprecated | Use instead |", "|---|---|"]
    return lines + [f"| `{old}` | `{new}` |" for old, new in rows.items()]


def _own_options(parser: argparse.ArgumentParser) -> list[str]:
    """A tool's options that are no setting of the service (``certs rotate --timeout``):
    command-line only, no variable."""
    own = [
        action
        for action in parser._actions
        if action.option_strings
        and not isinstance(action, FlagAction)
        and not isinstance(action, argparse._HelpAction)
    ]
    return [
        f"- `{action.option_strings[0]}`: {(action.help or '') % {'default': action.default}}"
        for action in own
    ]


def render(parser: argparse.ArgumentParser) -> str:
    """The whole reference for ``parser`` (the ``image-registry-webhook`` command)."""
    commands = subcommands(parser)
    flags = {name: [a.flag for a in declared_flags(commands[name])] for name in DOCUMENTED}
    serve, controller = (flags[name] for name in DOCUMENTED)
    shared = [flag for flag in serve if flag in controller]
    lines = [INTRODUCTION]
    lines += ["## Both `serve` and `controller`", "", *_table(shared), ""]
    for name in DOCUMENTED:
        own = [flag for flag in flags[name] if flag not in shared]
        lines += [f"## `{name}`", "", *_table(own), ""]
    documented = {(flag.option, repr(flag.default)) for flag in serve + controller}
    for name, command in commands.items():
        if name in DOCUMENTED:
            continue
        nested = subcommands(command)
        for full, parser_of in [(f"{name} {n}", p) for n, p in nested.items()] or [(name, command)]:
            declared = [action.flag for action in declared_flags(parser_of)]
            known = [flag for flag in declared if (flag.option, repr(flag.default)) in documented]
            options = [flag.option for flag in known]
            own_flags = [flag for flag in declared if flag not in known]
            text = f"Takes these flags, described above: {_code(options)}."
            if own_flags:
                text += " And these of its own:"
            tool_options = _own_options(parser_of)
            lines += [f"## `{full}`", "", text]
            lines += ["", *_table(own_flags)] if own_flags else []
            lines += [*(["", *tool_options] if tool_options else []), ""]
            documented |= {(flag.option, repr(flag.default)) for flag in own_flags}
    every = list({flag.option: flag for flag in serve + controller}.values())
    lines += ["## Deprecated names", "", *_deprecated(every)]
    return "\n".join(lines) + "\n"
