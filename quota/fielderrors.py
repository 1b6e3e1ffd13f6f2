"""Field errors shaped like Kubernetes' ``field.Error``, so messages read like the API server's."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum


class ErrorType(StrEnum):
    """The Kubernetes field error types used here (their wording is part of messages)."""

    INVALID = "Invalid value"
    UNSUPPORTED = "Unsupported value"
    FORBIDDEN = "Forbidden"
    REQUIRED = "Required value"


_NO_VALUE_TYPES = frozenset({ErrorType.FORBIDDEN, ErrorType.REQUIRED})


def format_bad_value(value: object) -> str:
    """Render a bad value like Kubernetes: strings quoted, numbers and booleans bare."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    except ValueError:  # circular structure; cannot come from JSON, stay total anyway
        return repr(value)


@dataclass(frozen=True)
class FieldError:
    """One problem at a field path, e.g. ``spec.limits[0].max[alauda.io/images]``."""

    path: str
    type: ErrorType
    value: object = None
    detail: str = ""

    def __str__(self) -> str:
        if self.type in _NO_VALUE_TYPES:
            body = str(self.type)
        else:
            body = f"{self.type}: {format_bad_value(self.value)}"
        if self.detail:
            body += f": {self.detail}"
        return f"{self.path}: {body}"


def unsupported(path: str, value: object, supported: tuple[str, ...]) -> FieldError:
    """An Unsupported value error listing the supported values, as Kubernetes does."""
    listed = ", ".join(json.dumps(item) for item in supported)
    return FieldError(path, ErrorType.UNSUPPORTED, value, f"supported values: {listed}")


@dataclass(frozen=True)
class Problem:
    """An entry skipped at evaluation time, with the object it came from (for logs)."""

    kind: str
    name: str
    error: FieldError

    def __str__(self) -> str:
        return f'{self.kind} "{self.name}": {self.error}'
