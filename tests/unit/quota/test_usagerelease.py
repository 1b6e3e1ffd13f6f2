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


KI = 1024
MI = 1024 * KI


def test_storage_freed_with_no_push_in_flight_is_released_at_once() -> None:
    """A tag delete drops 600 KiB of a namespace's storage; nothing else is charged."""
    step = plan_usage(1600 * KI, 1000 * KI, 1600 * KI, None, T0, GRACE, charges_depend_on_held=True)
    assert step == UsageStep(write=1000 * KI)


def test_storage_freed_while_a_push_that_reused_its_blobs_is_in_flight_waits_the_grace() -> None:
    """Image D holds a 6 MiB blob; push E (that blob and a 1 KiB config) was charged 1 KiB
    because D held it; D is deleted before E lands. Releasing D's 6 MiB at once would write
    1 KiB, admit a 9 MiB push F under a 10 MiB limit, and leave 15 MiB stored when E lands."""
    step = plan_usage(6 * MI + KI, 0, 6 * MI, None, T0, GRACE, charges_depend_on_held=True)
    assert step == UsageStep(gap=Gap(6 * MI + KI, 0, T0), wait=GRACE.total_seconds())
    assert plan_usage(6 * MI + KI, 0, 0, step.gap, at(35), GRACE, charges_depend_on_held=True) == (
        UsageStep(write=0)
    )


def test_a_count_whose_charges_depend_on_nothing_else_releases_past_a_charge_in_flight() -> None:
    """The same race for alauda.io/imagestreams: a stream's charge is 1 whatever else
    exists, so the deleted stream's 1 is released at once and the in-flight 1 is kept."""
    assert plan_usage(7, 4, 5, None, T0, GRACE, charges_depend_on_held=False).write == 6
