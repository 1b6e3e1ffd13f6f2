"""The Dockerfile as data, read with BuildKit's own parser (the ``dockerfile`` package):
what the image runs and how, for the tests that hold the image and its manifests to it."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import dockerfile

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"


@dataclass(frozen=True)
class Image:
    bases: tuple[str, ...]
    """The image of every FROM, in order, with the global ARGs' defaults substituted (a
    build that passes no --build-arg)."""
    build_args: dict[str, str | None]
    """Every ARG the final stage declares, with its default (None: none)."""
    context_sources: tuple[str, ...]
    """What COPY takes from the build context (not from another stage)."""
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    exec_form: bool
    """ENTRYPOINT and CMD both in JSON (exec) form: no shell between the kubelet's
    SIGTERM and the process."""
    user: str
    env: dict[str, str]
    labels: dict[str, str]
    exposed: tuple[str, ...]


def _pairs(values: tuple[str, ...]) -> dict[str, str]:
    """ENV and LABEL arguments, key then value, each value unquoted as the shell would."""
    keys, raw = values[::2], values[1::2]
    return {key: " ".join(shlex.split(value)) for key, value in zip(keys, raw, strict=True)}


VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
"""``$NAME`` or ``${NAME}``; the ``${NAME:-word}`` forms are not used here."""


def _args(commands: list[dockerfile.Command]) -> dict[str, str | None]:
    """ARG declarations, ``NAME=default`` or ``NAME``."""
    declared: dict[str, str | None] = {}
    for command in commands:
        if command.cmd == "ARG":
            for value in command.value:
                name, equals, default = value.partition("=")
                declared[name] = default if equals else None
    return declared


def _substitute(text: str, values: dict[str, str | None]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        found = values.get(name)
        if found is None:
            raise ValueError(f"{text!r} uses ARG {name}, which has no default")
        return found

    return VARIABLE.sub(value, text)


def read(path: Path = DOCKERFILE) -> Image:
    commands = dockerfile.parse_file(str(path))
    froms = [i for i, c in enumerate(commands) if c.cmd == "FROM"]
    global_args = _args(commands[: froms[0]])
    final = commands[froms[-1] :]

    def last(cmd: str) -> dockerfile.Command:
        [*_, command] = [c for c in final if c.cmd == cmd]
        return command

    env: dict[str, str] = {}
    labels: dict[str, str] = {}
    for command in final:
        if command.cmd == "ENV":
            env.update(_pairs(command.value))
        elif command.cmd == "LABEL":
            labels.update(_pairs(command.value))
    return Image(
        bases=tuple(_substitute(commands[i].value[0], global_args) for i in froms),
        build_args=_args(final),
        context_sources=tuple(
            source
            for c in commands
            if c.cmd == "COPY" and not any(f.startswith("--from") for f in c.flags)
            for source in c.value[:-1]
        ),
        entrypoint=last("ENTRYPOINT").value,
        cmd=last("CMD").value,
        exec_form=last("ENTRYPOINT").json and last("CMD").json,
        user=last("USER").value[0],
        env=env,
        labels=labels,
        exposed=tuple(port for c in final if c.cmd == "EXPOSE" for port in c.value),
    )
