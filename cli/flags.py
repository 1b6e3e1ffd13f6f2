"""Flags the way Kubernetes components have them, each also read from environment variables.

argparse alone cannot tell a flag given on the command line from its default, nor parse
an environment variable with the flag's own parser; so a flag is declared once (``Flag``),
installed with a placeholder default, and ``resolve`` fills in, after parsing, each flag
the command line left out: from the first of its environment variables that is set and not
empty (parsed like the flag; an error names the variable), else its default. Old names
still work and are reported once each, for the caller to log. The same declarations
generate the configuration reference (``cli.reference``).
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ENV_PREFIX = "REGISTRY_WEBHOOK_"
"""Every flag ``--some-flag`` is also ``REGISTRY_WEBHOOK_SOME_FLAG``."""

TRUE_WORDS = ("true", "1", "yes")
FALSE_WORDS = ("false", "0", "no")
_BOOLEAN_WORDS = ", ".join(f"{t}, {f}" for t, f in zip(TRUE_WORDS, FALSE_WORDS, strict=True))

_DEPRECATIONS = "_deprecated_names"
"""Namespace attribute where flag actions note the old names used."""


class FlagError(ValueError):
    """A flag's environment variable holds a value its parser refuses."""


def parse_bool(value: str) -> bool:
    """The one boolean parser of flags and environment variables."""
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"expected one of {_BOOLEAN_WORDS}; got {value!r}")


@dataclass(frozen=True)
class Flag:
    """One setting: ``--name`` on the command line, or an environment variable.

    ``env``: the variables, first set wins (default: ``REGISTRY_WEBHOOK_<NAME>``);
    ``deprecated``: old flag names still accepted (``--no-x`` sets a boolean to false),
    whose ``REGISTRY_WEBHOOK_`` variables are read after the current ones;
    ``repeatable``: each use adds an item, the variable is a comma-separated list.
    """

    name: str
    help: str
    default: Any
    parse: Callable[[str], Any] = str
    dest: str = ""
    metavar: str | None = None
    boolean: bool = False
    repeatable: bool = False
    env: tuple[str, ...] = ()
    deprecated: tuple[str, ...] = ()
    _env: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.dest:
            object.__setattr__(self, "dest", self.name.replace("-", "_"))
        if self.boolean:
            object.__setattr__(self, "parse", parse_bool)
        own = self.env or (_env_name(self.name),)
        old = tuple(_env_name(n) for n in self.deprecated if not n.startswith("--no-"))
        object.__setattr__(self, "_env", own + old)

    @property
    def option(self) -> str:
        return f"--{self.name}"

    @property
    def env_vars(self) -> tuple[str, ...]:
        """Every variable read, current ones first, then those of deprecated names."""
        return self._env

    def is_deprecated_env(self, name: str) -> bool:
        return name not in (self.env or (_env_name(self.name),))

    def parse_env(self, raw: str) -> Any:
        if self.repeatable:
            return [self.parse(item.strip()) for item in raw.split(",") if item.strip()]
        return self.parse(raw)


def _env_name(flag_name: str) -> str:
    return ENV_PREFIX + flag_name.lstrip("-").upper().replace("-", "_")


class _Unset:
    """The placeholder default: this flag was not on the command line."""

    def __init__(self, flag: Flag) -> None:
        self.flag = flag

    def __repr__(self) -> str:
        return f"<unset {self.flag.option}>"


class FlagAction(argparse.Action):
    """Stores (or, repeatable, appends) a flag's value; notes use of a deprecated name."""

    def __init__(
        self,
        option_strings: Sequence[str],
        dest: str,
        *,
        flag: Flag,
        alias: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.flag = flag
        self.alias = alias
        """The deprecated name this action stands for; None for the flag itself."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        value = self.const if self.nargs == 0 else values
        if self.flag.repeatable:
            current = getattr(namespace, self.dest, None)
            items = [] if isinstance(current, _Unset) or current is None else list(current)
            value = [*items, value]
        setattr(namespace, self.dest, value)
        if self.alias is not None:
            notices: list[str] = getattr(namespace, _DEPRECATIONS, [])
            notices.append(_replacement(self.alias, self.flag))
            setattr(namespace, _DEPRECATIONS, notices)


def _replacement(alias: str, flag: Flag) -> str:
    if flag.boolean and alias.startswith("--no-"):
        return f"flag {alias} is deprecated: use {flag.option}=false"
    return f"flag {alias} is deprecated: use {flag.option}"


def add_flags(
    parser: argparse.ArgumentParser, flags: Sequence[Flag], *, inherited: bool = False
) -> None:
    """Install ``flags``, each with its deprecated names hidden from ``--help``.

    ``inherited``: the flags are the top-level parser's too (global flags, given before
    the subcommand or after it); here they get no default, so that a subcommand that
    does not see them leaves what the top-level parser read (argparse copies every
    attribute of the subcommand's namespace over the top-level one)."""
    for flag in flags:
        default: Any = argparse.SUPPRESS if inherited else _Unset(flag)
        parser.add_argument(
            flag.option,
            action=FlagAction,
            flag=flag,
            dest=flag.dest,
            default=default,
            help=_escape(help_text(flag)),
            metavar=flag.metavar or _metavar(flag),
            **_value_kwargs(flag, negated=False),
        )
        for alias in flag.deprecated:
            negated = flag.boolean and alias.startswith("--no-")
            parser.add_argument(
                alias,
                action=FlagAction,
                flag=flag,
                alias=alias,
                dest=flag.dest,
                default=default,
                help=argparse.SUPPRESS,
                **_value_kwargs(flag, negated=negated),
            )


def _metavar(flag: Flag) -> str:
    return "BOOL" if flag.boolean else flag.name.upper().replace("-", "_")


def _value_kwargs(flag: Flag, *, negated: bool) -> dict[str, Any]:
    if negated:
        return {"nargs": 0, "const": False}
    if flag.boolean:
        # --flag alone means true; --flag=false (or no, 0) turns it off, as Go's flags do.
        return {"nargs": "?", "const": True, "type": flag.parse}
    return {"type": flag.parse}


def help_text(flag: Flag) -> str:
    """The help line: what it does, then its default and environment variables; empty
    when the flag says nothing (so a check of the parser finds it)."""
    if not flag.help.strip():
        return ""
    shown = show_default(flag.default)
    default = f"default {shown}" if shown else "no default"
    own = [name for name in flag.env_vars if not flag.is_deprecated_env(name)]
    return f"{flag.help} ({default}; env {', '.join(own)})"


def show_default(value: Any) -> str:
    """A default as a user would type it; empty for none."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    return str(value)


def _escape(text: str) -> str:
    return text.replace("%", "%%")  # argparse formats help with %


def resolve(namespace: argparse.Namespace, environ: Mapping[str, str]) -> list[str]:
    """Fill every flag the command line left out, from ``environ`` or its default.

    Returns the deprecation notices of this invocation (flags and variables), each once;
    raises ``FlagError`` naming the variable whose value the flag's parser refuses.
    Calling it again changes nothing.
    """
    notices: list[str] = list(getattr(namespace, _DEPRECATIONS, []))
    for dest, value in sorted(vars(namespace).items()):
        if not isinstance(value, _Unset):
            continue
        flag = value.flag
        resolved = copy.deepcopy(flag.default)
        for name in flag.env_vars:
            raw = environ.get(name, "")
            if not raw.strip():
                continue
            try:
                resolved = flag.parse_env(raw)
            except (argparse.ArgumentTypeError, ValueError, TypeError) as err:
                raise FlagError(f"environment variable {name}: {err}") from None
            if flag.is_deprecated_env(name):
                notices.append(f"environment variable {name} is deprecated: use {flag.env_vars[0]}")
            break
        setattr(namespace, dest, resolved)
    return list(dict.fromkeys(notices))


def declared_flags(parser: argparse.ArgumentParser) -> list[FlagAction]:
    """The flags of ``parser`` declared with ``add_flags`` (deprecated names excluded)."""
    return [
        action
        for action in parser._actions
        if isinstance(action, FlagAction) and action.alias is None
    ]


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommand parsers of ``parser``, by name."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def command_parser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The parser of command ``name`` (``certs rotate``: the nested one)."""
    for word in name.split():
        parser = subcommands(parser)[word]
    return parser
