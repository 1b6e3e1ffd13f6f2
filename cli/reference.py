"""The configuration reference (docs/configuration.md), generated from the parser itself so
that it cannot drift from what the command accepts: ``python hack/gen_config_docs.py``."""

from __future__ import annotations

import argparse

from cli.flags import Flag, FlagAction, command_parser, declared_flags, show_default

COMMANDS = (
    "serve",
    "frontdoor",
    "controller",
    "node-ca",
    "webhook-configurations",
    "certs rotate",
    "prune images",
)
"""In the reference's order: the processes, then the tools."""

INTRODUCTION = """\
# Configuration reference

<!-- Generated from the command's parser by hack/gen_config_docs.py: do not edit by hand.
     A unit test (tests/unit/cli/test_reference.py) fails when it is stale. -->

`image-registry-webhook serve` runs the admission webhooks and the PushReview API,
`image-registry-webhook frontdoor` the registry API before a registry, and
`image-registry-webhook controller` the reconcilers, and `image-registry-webhook node-ca`
(one per node) the registry's CAs into the node's containerd. `image-registry-webhook --version`
prints the version, `image-registry-webhook COMMAND --help` the flags below.

Each command accepts its own flags and the global ones, nothing else: a flag of another
command is refused, with the commands it belongs to. Global flags may come before the
command or after it (`image-registry-webhook --log-level DEBUG serve ...`).

Every flag can also be set with an environment variable. A flag on the command line wins
over the variable, the variable over the default; a variable that is empty counts as unset.
A variable that no flag of the command reads is ignored, so one environment can serve
every process.

- **Booleans**: `--flag` alone means true, `--flag=false` turns it off. Flags and variables
  take `true`, `false`, `1`, `0`, `yes` or `no` (any case) and refuse anything else.
- **Addresses**: `host:port`, `:port` (every IPv4 interface) or `[::]:port` (IPv6); `0`
  turns the listener off.
- **Repeatable flags** are given once per value; their variable is a comma-separated list.
- **Deprecated names** still work and are logged once, as a warning, at start.
- **The tools** (`webhook-configurations`, `certs rotate`, `prune images`) answer in
  text: their result on standard output, a failure as one line on standard error. The
  processes log in `--log-format`.
- **No API server**: without `--kubeconfig` (or `KUBECONFIG`), outside a cluster and
  without `~/.kube/config`, a command that needs the API server says so in one line and
  exits 1 before it starts anything.
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
    global_flags = [action.flag for action in declared_flags(parser)]
    lines = [INTRODUCTION, "## Global flags (every command)", "", *_table(global_flags), ""]
    every = list(global_flags)
    for name in COMMANDS:
        command = command_parser(parser, name)
        own = [a.flag for a in declared_flags(command) if a.flag not in global_flags]
        every += own
        lines += [f"## `{name}`", ""]
        lines += [*_table(own), ""] if own else ["Only the global flags.", ""]
        tool_options = _own_options(command)
        lines += [*tool_options, ""] if tool_options else []
    unique = list({(flag.option, id(flag)): flag for flag in every}.values())
    lines += ["## Deprecated names", "", *_deprecated(unique)]
    return "\n".join(lines) + "\n"
