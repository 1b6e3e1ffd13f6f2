"""Apply-time validation of the ``alauda.io`` entries of LimitRanges and ResourceQuotas.

Only entries this service owns are judged; everything else is left to the API server.

LimitRange items of type ``alauda.io/Image`` (``storage``) or ``alauda.io/ImageStream``
(``alauda.io/image-tags``, ``alauda.io/images``) may set ``max`` and ``min``; ``max`` is what
admission enforces (see quota.limits). ``default``, ``defaultRequest`` and
``maxLimitRequestRatio`` describe container requests and limits, which images do not have,
so they are forbidden for these types (worded like Kubernetes' rule for type ``Pod``). An
unknown ``alauda.io/`` type is unsupported. On native types (Container, Pod, ...) the three
count resources this service defines are refused, since they would silently do nothing;
other ``alauda.io/`` names stay allowed there, as they may be extended resources.

ResourceQuota: the ``alauda.io/`` keys of ``spec.hard`` are ``alauda.io/imagestreams``, a
non-negative whole number, and ``alauda.io/image-storage``, a non-negative quantity of
bytes; neither can sit in a scoped quota (ImageStreams and Images have no scopes, see
quota.resourcequota).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from quota.fielderrors import ErrorType, FieldError, unsupported
from quota.limits import LIMIT_RANGE_KIND, limit_range_items
from quota.objects import mapping
from quota.quantity import InvalidQuantity
from quota.resourcequota import RESOURCE_QUOTA_KIND, has_scopes
from quota.resources import (
    KNOWN_ALAUDA_RESOURCES,
    LIMIT_TYPE_IMAGE_STREAM,
    LIMIT_TYPE_RESOURCES,
    QUOTA_RESOURCES,
    RESOURCE_IMAGE_STORAGE,
    RESOURCE_IMAGESTREAMS,
    is_alauda_name,
    parse_resource_value,
)

#: Fields of a LimitRange item that map resource names to quantities.
LIMIT_FIELDS: Final = ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio")
#: The subset that makes sense for alauda.io types.
ALAUDA_LIMIT_FIELDS: Final = ("max", "min")

_MAP_DETAIL: Final = "must be a map of resource names to quantities"
_COUNTED: Final = {RESOURCE_IMAGESTREAMS: "ImageStreams", RESOURCE_IMAGE_STORAGE: "Images"}
"""What each quota resource counts, for the scoped-quota refusal."""


def names_alauda(obj: Mapping[str, Any], kind: str | None = None) -> bool:
    """Does a LimitRange or ResourceQuota name an ``alauda.io/`` type or resource?

    Mirrors the ``/validate/policies`` matchConditions: LimitRange item types and the keys of
    any item's max/min/default/defaultRequest/maxLimitRequestRatio; ResourceQuota
    ``spec.hard`` keys. ``kind`` defaults to the object's own ``kind``; other kinds: False.
    """
    kind = kind if kind is not None else obj.get("kind")
    if kind == LIMIT_RANGE_KIND:
        for item in limit_range_items(obj):
            if not isinstance(item, Mapping):
                continue
            if is_alauda_name(item.get("type")):
                return True
            for field in LIMIT_FIELDS:
                if any(is_alauda_name(key) for key in mapping(item.get(field))):
                    return True
        return False
    if kind == RESOURCE_QUOTA_KIND:
        hard = mapping(mapping(obj.get("spec")).get("hard"))
        return any(is_alauda_name(key) for key in hard)
    return False


def _alauda_item_errors(
    item: Mapping[str, Any], item_path: str, limit_type: str
) -> list[FieldError]:
    errors: list[FieldError] = []
    allowed = LIMIT_TYPE_RESOURCES[limit_type]
    for field in LIMIT_FIELDS:
        if field not in ALAUDA_LIMIT_FIELDS and item.get(field):
            errors.append(
                FieldError(
                    f"{item_path}.{field}",
                    ErrorType.FORBIDDEN,
                    detail=f"may not be specified when `type` is '{limit_type}'",
                )
            )
    parsed: dict[str, dict[str, tuple[Decimal, object]]] = {}
    for field in ALAUDA_LIMIT_FIELDS:
        section = item.get(field)
        if section is None:
            continue
        if not isinstance(section, Mapping):
            errors.append(
                FieldError(f"{item_path}.{field}", ErrorType.INVALID, section, _MAP_DETAIL)
            )
            continue
        values = parsed.setdefault(field, {})
        for resource, raw in section.items():
            path = f"{item_path}.{field}[{resource}]"
            if resource not in allowed:
                errors.append(unsupported(path, resource, allowed))
                continue
            try:
                values[resource] = (parse_resource_value(resource, raw), raw)
            except InvalidQuantity as exc:
                errors.append(FieldError(path, ErrorType.INVALID, raw, exc.detail))
    minima, maxima = parsed.get("min", {}), parsed.get("max", {})
    for resource, (low, low_raw) in minima.items():
        if resource in maxima and low > maxima[resource][0]:
            errors.append(
                FieldError(
                    f"{item_path}.min[{resource}]",
                    ErrorType.INVALID,
                    low_raw,
                    f"min value {low_raw} is greater than max value {maxima[resource][1]}",
                )
            )
    return errors


def _native_item_errors(item: Mapping[str, Any], item_path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for field in LIMIT_FIELDS:
        for resource in mapping(item.get(field)):
            if resource in KNOWN_ALAUDA_RESOURCES:
                where = (
                    "in a ResourceQuota"
                    if resource in QUOTA_RESOURCES
                    else f"for type '{LIMIT_TYPE_IMAGE_STREAM}'"
                )
                errors.append(
                    FieldError(
                        f"{item_path}.{field}[{resource}]",
                        ErrorType.INVALID,
                        resource,
                        f"only valid {where}",
                    )
                )
    return errors


def validate_limit_range(obj: Mapping[str, Any]) -> list[FieldError]:
    """Errors in the alauda.io entries of a LimitRange (empty when it can work)."""
    errors: list[FieldError] = []
    for index, item in enumerate(limit_range_items(obj)):
        if not isinstance(item, Mapping):
            continue
        item_path = f"spec.limits[{index}]"
        limit_type = item.get("type")
        if isinstance(limit_type, str) and limit_type in LIMIT_TYPE_RESOURCES:
            errors.extend(_alauda_item_errors(item, item_path, limit_type))
        elif is_alauda_name(limit_type):
            errors.append(unsupported(f"{item_path}.type", limit_type, tuple(LIMIT_TYPE_RESOURCES)))
        else:
            errors.extend(_native_item_errors(item, item_path))
    return errors


def validate_resource_quota(obj: Mapping[str, Any]) -> list[FieldError]:
    """Errors in the alauda.io entries of a ResourceQuota (empty when it can work)."""
    errors: list[FieldError] = []
    spec = mapping(obj.get("spec"))
    hard = mapping(spec.get("hard"))
    for resource, raw in hard.items():
        if not is_alauda_name(resource):
            continue
        path = f"spec.hard[{resource}]"
        if resource not in QUOTA_RESOURCES:
            errors.append(unsupported(path, resource, QUOTA_RESOURCES))
            continue
        try:
            parse_resource_value(resource, raw)
        except InvalidQuantity as exc:
            errors.append(FieldError(path, ErrorType.INVALID, raw, exc.detail))
    ours = [resource for resource in QUOTA_RESOURCES if resource in hard]
    if ours and has_scopes(obj):
        scopes = spec.get("scopes")
        path = "spec.scopes" if isinstance(scopes, list) and scopes else "spec.scopeSelector"
        errors.append(
            FieldError(
                path,
                ErrorType.FORBIDDEN,
                detail=f"{', '.join(ours)} cannot be limited by a scoped quota: "
                f"{' and '.join(_COUNTED[r] for r in ours)} have no scopes",
            )
        )
    return errors


def validate_policy(obj: Mapping[str, Any], kind: str | None = None) -> list[FieldError]:
    """Validate a LimitRange or ResourceQuota, by ``kind`` (default: the object's own)."""
    kind = kind if kind is not None else obj.get("kind")
    if kind == LIMIT_RANGE_KIND:
        return validate_limit_range(obj)
    if kind == RESOURCE_QUOTA_KIND:
        return validate_resource_quota(obj)
    return [unsupported("kind", kind, (LIMIT_RANGE_KIND, RESOURCE_QUOTA_KIND))]


def invalid_message(kind: str, name: str, errors: list[FieldError]) -> str:
    """``<Kind> "<name>" is invalid: <path>: <type>: <value>: <detail>; ...``.

    Modelled on the API server's field errors; several errors are joined with ``"; "``.
    """
    if not errors:
        raise ValueError("invalid_message needs at least one error")
    return f'{kind} "{name}" is invalid: ' + "; ".join(str(error) for error in errors)
