"""Effective ``alauda.io`` limits of a namespace from its LimitRanges: the smallest max wins.

Only ``max`` is enforced. ``min`` of a count would forbid creating an empty ImageStream and
a minimum image size has no use, so ``min`` is validated at apply time but not enforced,
as in OpenShift. Entries that the policy validator would reject (unknown alauda.io type,
resource not valid for the type, value that is not a non-negative quantity, fractional
count) are skipped here rather than crashing admission, and reported in ``problems`` so the
caller can log them. The validating webhook keeps such entries out of the cluster; they can
only predate it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from quota.fielderrors import ErrorType, FieldError, Problem, unsupported
from quota.objects import object_name
from quota.quantity import InvalidQuantity
from quota.resources import (
    LIMIT_TYPE_RESOURCES,
    LimitKey,
    is_alauda_name,
    parse_resource_value,
)

LIMIT_RANGE_KIND = "LimitRange"


@dataclass(frozen=True)
class Limit:
    """An effective maximum and the LimitRange that set it (named in denial messages)."""

    maximum: Decimal
    limit_range: str


@dataclass(frozen=True)
class EffectiveLimits:
    """The winning max per (type, resource) and the entries skipped while computing it."""

    limits: Mapping[LimitKey, Limit] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()

    def get(self, key: LimitKey) -> Limit | None:
        """The effective limit for ``key``, or None when no LimitRange bounds it."""
        return self.limits.get(key)


def limit_range_items(limit_range: Mapping[str, Any]) -> list[Any]:
    """``spec.limits`` as a list (empty when absent or not a list)."""
    spec = limit_range.get("spec")
    items = spec.get("limits") if isinstance(spec, Mapping) else None
    return items if isinstance(items, list) else []


def limit_range_maxima(
    limit_range: Mapping[str, Any],
) -> tuple[list[tuple[LimitKey, Decimal]], list[FieldError]]:
    """The usable alauda.io ``max`` entries of one LimitRange, and the unusable ones."""
    found: list[tuple[LimitKey, Decimal]] = []
    errors: list[FieldError] = []
    for index, item in enumerate(limit_range_items(limit_range)):
        if not isinstance(item, Mapping):
            continue
        item_path = f"spec.limits[{index}]"
        limit_type = item.get("type")
        if not isinstance(limit_type, str) or limit_type not in LIMIT_TYPE_RESOURCES:
            if is_alauda_name(limit_type):
                errors.append(
                    unsupported(f"{item_path}.type", limit_type, tuple(LIMIT_TYPE_RESOURCES))
                )
            continue
        maxima = item.get("max")
        if maxima is None:
            continue
        if not isinstance(maxima, Mapping):
            errors.append(
                FieldError(
                    f"{item_path}.max",
                    ErrorType.INVALID,
                    maxima,
                    "must be a map of resource names to quantities",
                )
            )
            continue
        allowed = LIMIT_TYPE_RESOURCES[limit_type]
        for resource, raw in maxima.items():
            path = f"{item_path}.max[{resource}]"
            if resource not in allowed:
                errors.append(unsupported(path, resource, allowed))
                continue
            try:
                value = parse_resource_value(resource, raw)
            except InvalidQuantity as exc:
                errors.append(FieldError(path, ErrorType.INVALID, raw, exc.detail))
                continue
            found.append((LimitKey(limit_type, resource), value))
    return found, errors


def effective_limits(limit_ranges: Iterable[Mapping[str, Any]]) -> EffectiveLimits:
    """Combine a namespace's LimitRanges: per (type, resource) the smallest ``max`` wins.

    Several items of one type, in one LimitRange or in several, all compete. On a tie the
    LimitRange whose name sorts first is reported, so the message does not depend on the
    order a cache lists objects in. Non-alauda items are ignored.
    """
    best: dict[LimitKey, Limit] = {}
    problems: list[Problem] = []
    for limit_range in limit_ranges:
        if not isinstance(limit_range, Mapping):
            continue
        name = object_name(limit_range)
        found, errors = limit_range_maxima(limit_range)
        problems.extend(Problem(LIMIT_RANGE_KIND, name, error) for error in errors)
        for key, value in found:
            current = best.get(key)
            if current is None or (value, name) < (current.maximum, current.limit_range):
                best[key] = Limit(value, name)
    return EffectiveLimits(best, tuple(problems))
