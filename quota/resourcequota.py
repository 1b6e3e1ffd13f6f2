"""ResourceQuota arithmetic for ``alauda.io/imagestreams`` and ``alauda.io/image-storage``
(charge at admission or push, reconcile later).

Both resources take the same steps; only the unit differs (objects, or bytes printed as
binary quantities). Matching follows the Kubernetes generic object-count evaluator: a
quota counts a resource when its ``spec.hard`` names it and it has no scopes.
ImageStreams and Images have no scopes (no priority class, no termination, no QoS), and
Kubernetes' evaluator only matches the scopes it supports, so a quota with
``spec.scopes`` or a non-empty ``spec.scopeSelector`` does not match (the policy validator
refuses that combination).

Values: ``spec.hard`` is rounded down and ``status.used`` rounded up to whole objects (or
bytes), which is exact for whole numbers and conservative otherwise. A quota whose hard
value cannot be parsed is skipped and reported in ``problems``; an unparseable or negative
used value is reported and counted as 0, so the quota keeps being enforced and the next
charge writes a valid value (the reconciler then recomputes it from the real objects). The
API server validates both fields, so these cases cannot arise from real objects.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from quota.decision import Cause, Decision
from quota.fielderrors import ErrorType, FieldError, Problem
from quota.objects import mapping, object_name
from quota.quantity import InvalidQuantity, parse_limit_value
from quota.resources import RESOURCE_IMAGESTREAMS, format_resource_value, is_count_resource

RESOURCE_QUOTA_KIND: Final = "ResourceQuota"


def _spec(quota: Mapping[str, Any]) -> Mapping[str, Any]:
    return mapping(quota.get("spec"))


def names_resource(quota: Mapping[str, Any], resource: str = RESOURCE_IMAGESTREAMS) -> bool:
    """True when the quota's ``spec.hard`` has an entry for ``resource``."""
    return resource in mapping(_spec(quota).get("hard"))


def has_scopes(quota: Mapping[str, Any]) -> bool:
    """True when the quota is scoped (``spec.scopes`` or ``spec.scopeSelector`` expressions)."""
    spec = _spec(quota)
    scopes = spec.get("scopes")
    expressions = mapping(spec.get("scopeSelector")).get("matchExpressions")
    return bool(isinstance(scopes, list) and scopes) or bool(
        isinstance(expressions, list) and expressions
    )


def quota_matches(quota: Mapping[str, Any], resource: str = RESOURCE_IMAGESTREAMS) -> bool:
    """True when the quota counts ``resource``: it names the resource and has no scopes."""
    return names_resource(quota, resource) and not has_scopes(quota)


def quota_exceeded_message(
    quota_name: str, requested: int, used: int, hard: int, resource: str = RESOURCE_IMAGESTREAMS
) -> str:
    """``exceeded quota: <name>, requested: R=1, used: R=5, limited: R=5`` (the contract);
    sizes as binary quantities (``alauda.io/image-storage=600Ki``)."""
    r = resource

    def value(amount: int) -> str:
        return format_resource_value(resource, amount)

    return (
        f"exceeded quota: {quota_name}, requested: {r}={value(requested)}, "
        f"used: {r}={value(used)}, limited: {r}={value(hard)}"
    )


def quota_unknown_message(quota_name: str, resource: str = RESOURCE_IMAGESTREAMS) -> str:
    """Kubernetes' words for a quota whose status does not count the resource yet."""
    return f"status unknown for quota: {quota_name}, resources: {resource}"


def has_usage(quota: Mapping[str, Any], resource: str = RESOURCE_IMAGESTREAMS) -> bool:
    """Whether ``status.used`` has an entry for ``resource`` at all."""
    return resource in mapping(mapping(quota.get("status")).get("used"))


def desired_used(count: int, resource: str = RESOURCE_IMAGESTREAMS) -> str:
    """The ``status.used`` value for ``count`` ImageStreams or bytes (what the reconciler
    and the charge write): a count as an integer, bytes as a binary quantity where one is
    exact (``600Ki``), as ``kubectl describe quota`` shows memory."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"a usage must be a non-negative integer, got {count!r}")
    return str(count) if is_count_resource(resource) else format_resource_value(resource, count)


@dataclass(frozen=True)
class QuotaCharge:
    """One matching quota: its hard and used counts, and ``status.used`` after the charge."""

    name: str
    hard: int
    used: int
    requested: int
    resource: str = RESOURCE_IMAGESTREAMS

    @property
    def fits(self) -> bool:
        return self.used + self.requested <= self.hard

    @property
    def new_used(self) -> str:
        return desired_used(self.used + self.requested, self.resource)

    @property
    def message(self) -> str:
        return quota_exceeded_message(
            self.name, self.requested, self.used, self.hard, self.resource
        )


@dataclass(frozen=True)
class ChargePlan:
    """The decision on a create: every matching quota is charged, or none is.

    ``charges`` lists all matching quotas by name; on a denial the decision's message is
    the contract message of the first that has no room.
    """

    decision: Decision
    charges: tuple[QuotaCharge, ...] = ()
    problems: tuple[Problem, ...] = ()

    @property
    def denied_by(self) -> QuotaCharge | None:
        return next((charge for charge in self.charges if not charge.fits), None)


def _hard(quota: Mapping[str, Any], resource: str) -> int:
    value = parse_limit_value(mapping(_spec(quota).get("hard")).get(resource), integer=False)
    return math.floor(value)


def resource_used(quota: Mapping[str, Any], resource: str) -> int:
    """``status.used[resource]`` as a whole count or byte size, rounded up (0 when absent).

    Raises InvalidQuantity when the entry is not a usable quantity.
    """
    used = mapping(mapping(quota.get("status")).get("used"))
    if resource not in used:
        return 0
    return math.ceil(parse_limit_value(used[resource], integer=False))


def imagestreams_used(quota: Mapping[str, Any]) -> int:
    """``status.used["alauda.io/imagestreams"]`` as a whole count (0 when absent)."""
    return resource_used(quota, RESOURCE_IMAGESTREAMS)


def quota_charge(
    quota: Mapping[str, Any], requested: int = 1, resource: str = RESOURCE_IMAGESTREAMS
) -> tuple[QuotaCharge | None, list[FieldError]]:
    """The charge ``requested`` ImageStreams (or bytes) make on one matching quota.

    Returns no charge when ``hard`` is unusable; see the module docstring for the rules.
    """
    errors: list[FieldError] = []
    path = f"spec.hard[{resource}]"
    try:
        hard = _hard(quota, resource)
    except InvalidQuantity as exc:
        errors.append(FieldError(path, ErrorType.INVALID, exc.value, exc.detail))
        return None, errors
    try:
        used = resource_used(quota, resource)
    except InvalidQuantity as exc:
        path = f"status.used[{resource}]"
        errors.append(FieldError(path, ErrorType.INVALID, exc.value, f"{exc.detail}; counted as 0"))
        used = 0
    return QuotaCharge(object_name(quota), hard, used, requested, resource), errors


def plan_create(
    quotas: Iterable[Mapping[str, Any]],
    requested: int = 1,
    resource: str = RESOURCE_IMAGESTREAMS,
) -> ChargePlan:
    """Decide a create of ``requested`` ImageStreams (or, for ``alauda.io/image-storage``,
    a push of ``requested`` new bytes) against a namespace's ResourceQuotas.

    Allowed when every matching quota has room (``used + requested <= hard``); then each
    charge's ``new_used`` is the value to write with a resourceVersion precondition.
    Without a matching quota the create is allowed and nothing is charged. A matching quota
    whose usage has not been computed yet is unknown, not zero: the create is denied, as
    Kubernetes denies one against a quota whose status lacks the resource, and passes once
    the usage reconciler has written it. A request of nothing (a push whose blobs the
    namespace already holds) needs no room: allowed, charging nothing, as Kubernetes'
    quota admission skips a quota whose resources the request does not use.
    """
    if requested == 0:
        return ChargePlan(Decision.allow())
    charges: list[QuotaCharge] = []
    problems: list[Problem] = []
    unknown: list[str] = []
    for quota in quotas:
        if not isinstance(quota, Mapping) or not quota_matches(quota, resource):
            continue
        if not has_usage(quota, resource):
            unknown.append(object_name(quota))
            continue
        charge, errors = quota_charge(quota, requested, resource)
        problems.extend(Problem(RESOURCE_QUOTA_KIND, object_name(quota), e) for e in errors)
        if charge is not None:
            charges.append(charge)
    charges.sort(key=lambda charge: charge.name)
    if unknown:
        message = quota_unknown_message(min(unknown), resource)
        decision = Decision.deny(message, Cause.QUOTA_UNKNOWN)
        return ChargePlan(decision, tuple(charges), tuple(problems))
    denied = next((charge for charge in charges if not charge.fits), None)
    decision = (
        Decision.allow() if denied is None else Decision.deny(denied.message, Cause.QUOTA_EXCEEDED)
    )
    return ChargePlan(decision, tuple(charges), tuple(problems))


def with_used(
    quota: Mapping[str, Any], value: str, resource: str = RESOURCE_IMAGESTREAMS
) -> dict[str, Any]:
    """A copy of the quota with ``status.used[resource]`` set to ``value``.

    Other ``status.used`` entries (those of the Kubernetes quota controller) are kept.
    """
    updated = copy.deepcopy(dict(quota))
    status = updated.get("status")
    if not isinstance(status, dict):
        status = updated["status"] = {}
    used = status.get("used")
    if not isinstance(used, dict):
        used = status["used"] = {}
    used[resource] = value
    return updated


def used_update(
    quota: Mapping[str, Any], count: int, resource: str = RESOURCE_IMAGESTREAMS
) -> str | None:
    """The reconciler's decision: the value to write for ``count`` ImageStreams (or bytes),
    or None.

    None when ``status.used`` already equals ``count`` (compared as quantities, so ``"5"``
    and ``"5000m"`` agree and no write loop starts); a missing or unparseable entry is
    always rewritten.
    """
    wanted = desired_used(count, resource)
    used = mapping(mapping(quota.get("status")).get("used"))
    if resource in used:
        try:
            if parse_limit_value(used[resource], integer=False) == count:
                return None
        except InvalidQuantity:
            pass
    return wanted


def _resource_version(quota: Mapping[str, Any]) -> int | None:
    """``metadata.resourceVersion`` as etcd's revision number, or None when it is not one.

    Kubernetes calls resourceVersions opaque, but its own quota admission compares them as
    etcd revisions (``etcd3.APIObjectVersioner.CompareResourceVersion``), and so do we.
    """
    value = mapping(quota.get("metadata")).get("resourceVersion")
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        return None
    return int(value)


def newer_quota(cached: Mapping[str, Any], written: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The fresher of a quota from the watch cache and the one our own last write returned.

    The cache lags our writes, so sequential charges built on it would all fail their
    precondition; kube-apiserver's quota admission keeps the quotas its writes returned
    and charges the newer one (``resource_access.go``, ``checkCache``). ``written`` wins
    only when it is the same object (same uid) at a strictly higher resourceVersion; when
    in doubt the cache wins. A wrong choice costs a 409 and a live read, never an
    over-admit: the write carries the chosen object's resourceVersion as precondition.
    """
    if written is None:
        return cached
    uid = mapping(cached.get("metadata")).get("uid")
    if not uid or uid != mapping(written.get("metadata")).get("uid"):
        return cached
    cached_rv, written_rv = _resource_version(cached), _resource_version(written)
    if cached_rv is None or written_rv is None or written_rv <= cached_rv:
        return cached
    return written
