"""When the usage reconciler may lower a quota's ``status.used``: at once for what stored
objects took away, after a grace for any other gap.

A quota's ``used`` is charged at admission (or at a push), before the object is stored;
the recount counts stored objects only. So the recount drops only when stored objects go
away (a stream deleted, a tag or an Image removed), and an in-flight charge raises
``used``, never the recount. Remembering the last recount it saw for a quota, the
reconciler therefore knows what was taken away since, and may lower ``used`` by exactly
that at once (never below the recount): every in-flight charge stays in ``used``. Native
quota frees ``count/`` usage the same way, on the delete's own event.

Any other gap between ``used`` and the recount (a charge whose create failed, or one
still on its way to storage) is released only after the same gap, judged on the values
(``used`` and the recount), not on the quota's resourceVersion, has lasted ``grace``:
longer than an admitted create can take to land. With no memory (a restart, a new
leader, a quota seen the first time) only the grace applies, which is never early.

The steps, for one quota and one resource:

1. ``used`` missing, unreadable or below the recount: write the recount (raising is
   always safe).
2. The recount dropped since it was last seen by ``lost``: write ``used - lost``, at
   least the recount; what stays above the recount starts a gap. Where a charge depends
   on what else is held (``alauda.io/image-storage``: a push is charged only for the
   blobs nothing in the namespace holds yet), only when no charge is in flight (``used``
   not above the recount last seen): a push charged nothing for the blobs of an Image
   deleted meanwhile, so releasing them at once would leave the push's bytes uncharged
   when it lands. With a charge in flight such a drop waits out the grace (step 3).
3. Any other gap: wait out the grace on it, then write the recount.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Gap:
    """``used`` above the recount, as first seen at ``since``."""

    used: int
    recount: int
    since: dt.datetime


@dataclass(frozen=True)
class UsageStep:
    """What to do: ``write`` this ``used`` value (None: nothing), the gap still waiting
    after it (None: none), and seconds until that gap's grace ends."""

    write: int | None = None
    gap: Gap | None = None
    wait: float | None = None


def plan_usage(
    used: int | None,
    recount: int,
    seen: int | None,
    gap: Gap | None,
    now: dt.datetime,
    grace: dt.timedelta,
    *,
    charges_depend_on_held: bool = False,
) -> UsageStep:
    """The step for a quota whose ``status.used`` is ``used`` (None: missing or
    unreadable), whose stored objects now count ``recount``, whose recount was last seen
    at ``seen`` (None: never, since this process started) and whose gap is ``gap``.
    ``charges_depend_on_held``: a charge was smaller for what else was held then (storage,
    not a count of streams), so a drop is released at once only with no charge in flight."""
    if used is None or used < recount:
        return UsageStep(write=recount)
    if used == recount:
        return UsageStep()
    lost = seen - recount if seen is not None and seen > recount else 0
    if charges_depend_on_held and seen is not None and used > seen:
        lost = 0  # a charge in flight may have counted on what was deleted: grace only
    if lost:
        lowered = max(recount, used - lost)
        if lowered == recount:
            return UsageStep(write=recount)
        return UsageStep(lowered, Gap(lowered, recount, now), grace.total_seconds())
    if gap is None or (gap.used, gap.recount) != (used, recount):
        return UsageStep(gap=Gap(used, recount, now), wait=grace.total_seconds())
    if now - gap.since < grace:
        return UsageStep(gap=gap, wait=(gap.since + grace - now).total_seconds())
    return UsageStep(write=recount)
