"""When the usage reconciler may lower status.used: at once for what was deleted, after a
grace for any other gap."""

from __future__ import annotations

import datetime as dt

import pytest

from quota.usagerelease import Gap, UsageStep, plan_usage

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
GRACE = dt.timedelta(seconds=35)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("used", [None, 2])
def test_missing_or_low_usage_is_raised_to_the_recount_at_once(used: int | None) -> None:
    assert plan_usage(used, 3, None, None, T0, GRACE) == UsageStep(write=3)


def test_matching_usage_needs_nothing_and_forgets_the_gap() -> None:
    assert plan_usage(3, 3, 5, Gap(5, 3, T0), at(1), GRACE) == UsageStep()


def test_a_deleted_object_is_released_at_once() -> None:
    assert plan_usage(5, 4, 5, None, T0, GRACE) == UsageStep(write=4)


def test_a_delete_never_releases_an_in_flight_charge() -> None:
    """Two creates charged (used 7) while five are stored; one stored stream is deleted:
    used drops by that one only, and the two charges wait out the grace."""
    step = plan_usage(7, 4, 5, None, T0, GRACE)
    assert step == UsageStep(6, Gap(6, 4, T0), GRACE.total_seconds())


def test_a_release_never_goes_below_the_recount() -> None:
    assert plan_usage(5, 1, 9, None, T0, GRACE) == UsageStep(write=1)


def test_without_memory_a_gap_waits_the_grace() -> None:
    """After a restart (or on a new leader) nothing says what was deleted: grace only."""
    step = plan_usage(5, 4, None, None, T0, GRACE)
    assert step == UsageStep(gap=Gap(5, 4, T0), wait=GRACE.total_seconds())
    assert plan_usage(5, 4, None, step.gap, at(34), GRACE).write is None
    assert plan_usage(5, 4, None, step.gap, at(35), GRACE) == UsageStep(write=4)


def test_a_recount_that_rose_releases_nothing_early() -> None:
    """A charged create landed (recount 3 -> 4) with another charge still in flight."""
    step = plan_usage(5, 4, 3, Gap(5, 3, T0), at(10), GRACE)
    assert step == UsageStep(gap=Gap(5, 4, at(10)), wait=GRACE.total_seconds())


def test_an_unchanged_gap_is_released_once_it_outlasts_the_grace() -> None:
    gap = Gap(5, 3, T0)
    assert plan_usage(5, 3, 3, gap, at(20), GRACE) == UsageStep(gap=gap, wait=15.0)
    assert plan_usage(5, 3, 3, gap, at(35), GRACE) == UsageStep(write=3)


def test_a_new_charge_restarts_the_grace() -> None:
    step = plan_usage(6, 3, 3, Gap(5, 3, T0), at(30), GRACE)
    assert step == UsageStep(gap=Gap(6, 3, at(30)), wait=GRACE.total_seconds())


def test_bytes_follow_the_same_rule() -> None:
    """A tag delete drops 600 KiB of a namespace's storage while a 1 MiB push is charged."""
    kib = 1024
    step = plan_usage(2600 * kib, 1000 * kib, 1600 * kib, None, T0, GRACE)
    assert step.write == 2000 * kib
    assert step.gap == Gap(2000 * kib, 1000 * kib, T0)
