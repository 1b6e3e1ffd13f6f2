"""Decide a batch of queued charges in one namespace at once, so that they cost one status
write per quota instead of one each (and no conflicts among themselves).

kube-apiserver's quota admission does the same (``resourcequota/controller.go``,
``checkQuotas``): the waiters queued for a namespace are checked in turn against a running
copy of its quotas; a waiter that does not fit is denied and leaves the running copy as it
was, so one denial never denies the others; a waiter that fits is charged on the running
copy, which the next waiter is checked against; then each quota the batch changed is
written once. Each waiter's verdict is ``plan_create``'s, so a batch of one decides exactly
as a single charge does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from quota.objects import Obj, object_name
from quota.resourcequota import ChargePlan, plan_create, with_used
from quota.resources import RESOURCE_IMAGESTREAMS


@dataclass(frozen=True)
class ChargeRequest:
    """One waiter's ask: ``requested`` more of ``resource`` (an ImageStream, a push's bytes)."""

    requested: int = 1
    resource: str = RESOURCE_IMAGESTREAMS


@dataclass(frozen=True)
class BatchPlan:
    """The verdict of each request, in order, and the status writes that carry them.

    ``writes`` are the changed quotas, in name order, each with every admitted request's
    charge applied and the resourceVersion it was read at (the write's precondition).
    ``charged`` is what the batch adds to each of them, by resource: what to take back
    when another write of the batch fails (all quotas or none).
    """

    plans: tuple[ChargePlan, ...]
    writes: tuple[Obj, ...] = ()
    charged: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    @property
    def any_denied(self) -> bool:
        return any(not plan.decision.allowed for plan in self.plans)


def plan_batch(quotas: Iterable[Mapping[str, Any]], requests: Sequence[ChargeRequest]) -> BatchPlan:
    """Check ``requests`` in order against the namespace's ``quotas`` and the charges of
    the requests before them that were admitted; see the module docstring."""
    running: dict[str, Mapping[str, Any]] = {}
    for quota in quotas:
        running[object_name(quota)] = quota
    changed: dict[str, dict[str, int]] = {}
    plans: list[ChargePlan] = []
    for request in requests:
        plan = plan_create(running.values(), request.requested, request.resource)
        plans.append(plan)
        if not plan.decision.allowed:
            continue  # denied: the running quotas stay as they were
        for charge in plan.charges:
            running[charge.name] = with_used(running[charge.name], charge.new_used, charge.resource)
            amounts = changed.setdefault(charge.name, {})
            amounts[charge.resource] = amounts.get(charge.resource, 0) + charge.requested
    writes = tuple(dict(running[name]) for name in sorted(changed))
    return BatchPlan(tuple(plans), writes, changed)
