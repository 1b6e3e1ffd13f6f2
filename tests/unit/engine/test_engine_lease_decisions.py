from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhook.engine.leaderelection import (
    LeaseAction,
    decide,
    default_identity,
    format_micro_time,
    parse_micro_time,
    release_spec,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ME = "controller-a"
OTHER = "controller-b"


def stamp(value: datetime) -> str:
    return format_micro_time(value)


def lease(
    holder: str | None,
    renewed: datetime | None = T0,
    *,
    duration: object = 15,
    transitions: object = 3,
    acquired: datetime = T0 - timedelta(hours=1),
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "leaseDurationSeconds": duration,
        "acquireTime": stamp(acquired),
        "leaseTransitions": transitions,
    }
    if holder is not None:
        spec["holderIdentity"] = holder
    if renewed is not None:
        spec["renewTime"] = stamp(renewed)
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "registry-controller", "namespace": "ns", "resourceVersion": "7"},
        "spec": spec,
    }


def test_micro_time_has_six_fraction_digits_in_utc() -> None:
    assert format_micro_time(T0) == "2026-01-01T00:00:00.000000Z"
    east = datetime(2026, 1, 1, 2, 0, 0, 1500, tzinfo=timezone(timedelta(hours=2)))
    assert format_micro_time(east) == "2026-01-01T00:00:00.001500Z"
    with pytest.raises(ValueError):
        format_micro_time(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-01T00:00:00.000000Z", T0),
        ("2026-01-01T00:00:00Z", T0),
        ("2026-01-01T01:00:00.5+01:00", T0 + timedelta(microseconds=500000)),
        ("2026-01-01T00:00:00.123456789Z", T0 + timedelta(microseconds=123456)),
    ],
)
def test_parse_micro_time(text: str, expected: datetime) -> None:
    assert parse_micro_time(text) == expected


@pytest.mark.parametrize("text", [None, "", "yesterday", 17, "2026-01-01T00:00:00"])
def test_parse_micro_time_rejects_missing_malformed_and_naive(text: object) -> None:
    assert parse_micro_time(text) is None


def test_no_lease_means_create_holding_it() -> None:
    decision = decide(None, ME, T0, 15)
    assert decision.action is LeaseAction.CREATE
    assert decision.holder == ""
    assert decision.spec == {
        "holderIdentity": ME,
        "leaseDurationSeconds": 15,
        "acquireTime": "2026-01-01T00:00:00.000000Z",
        "renewTime": "2026-01-01T00:00:00.000000Z",
        "leaseTransitions": 0,
    }


def test_our_lease_is_renewed_keeping_acquire_time_and_transitions() -> None:
    now = T0 + timedelta(seconds=2, microseconds=7)
    decision = decide(lease(ME), ME, now, 20)
    assert decision.action is LeaseAction.RENEW
    assert decision.holder == ME
    assert decision.spec == {
        "holderIdentity": ME,
        "leaseDurationSeconds": 20,
        "acquireTime": stamp(T0 - timedelta(hours=1)),
        "renewTime": "2026-01-01T00:00:02.000007Z",
        "leaseTransitions": 3,
    }


def test_our_lease_is_renewed_even_when_it_looks_expired() -> None:
    # Nobody took it over (we are still the holder), so it is still ours.
    decision = decide(lease(ME), ME, T0 + timedelta(hours=1), 15)
    assert decision.action is LeaseAction.RENEW
    assert decision.spec is not None
    assert decision.spec["leaseTransitions"] == 3


def test_a_live_lease_of_another_holder_means_wait() -> None:
    decision = decide(lease(OTHER), ME, T0 + timedelta(seconds=14), 15)
    assert decision.action is LeaseAction.WAIT
    assert decision.spec is None
    assert decision.holder == OTHER


def test_an_expired_lease_is_taken_over_with_one_more_transition() -> None:
    now = T0 + timedelta(seconds=30)
    decision = decide(lease(OTHER), ME, now, 15)
    assert decision.action is LeaseAction.ACQUIRE
    assert decision.holder == OTHER
    assert decision.spec == {
        "holderIdentity": ME,
        "leaseDurationSeconds": 15,
        "acquireTime": stamp(now),
        "renewTime": stamp(now),
        "leaseTransitions": 4,
    }


def test_expiry_boundary_is_renew_time_plus_duration() -> None:
    expiry = T0 + timedelta(seconds=15)
    just_before = decide(lease(OTHER), ME, expiry - timedelta(microseconds=1), 15)
    at_expiry = decide(lease(OTHER), ME, expiry, 15)
    assert just_before.action is LeaseAction.WAIT
    assert at_expiry.action is LeaseAction.ACQUIRE


def test_expiry_uses_the_duration_written_in_the_lease() -> None:
    short = lease(OTHER, duration=1)
    assert decide(short, ME, T0 + timedelta(milliseconds=999), 60).action is LeaseAction.WAIT
    assert decide(short, ME, T0 + timedelta(seconds=1), 60).action is LeaseAction.ACQUIRE


@pytest.mark.parametrize("duration", [None, 0, -5, "15", True])
def test_a_missing_or_bad_duration_falls_back_to_ours(duration: object) -> None:
    odd = lease(OTHER, duration=duration)
    assert decide(odd, ME, T0 + timedelta(seconds=9), 10).action is LeaseAction.WAIT
    assert decide(odd, ME, T0 + timedelta(seconds=10), 10).action is LeaseAction.ACQUIRE


@pytest.mark.parametrize("holder", ["", None])
def test_a_lease_without_holder_is_free_at_once(holder: str | None) -> None:
    decision = decide(lease(holder, renewed=T0), ME, T0, 15)
    assert decision.action is LeaseAction.ACQUIRE
    assert decision.holder == ""
    assert decision.spec is not None
    assert decision.spec["holderIdentity"] == ME
    assert decision.spec["leaseTransitions"] == 4


def test_a_lease_without_spec_is_free() -> None:
    bare = {"metadata": {"name": "x", "resourceVersion": "1"}}
    decision = decide(bare, ME, T0, 15)
    assert decision.action is LeaseAction.ACQUIRE
    assert decision.spec is not None
    assert decision.spec["leaseTransitions"] == 1


@pytest.mark.parametrize("renew", [None, "not a time"])
def test_a_holder_without_a_readable_renew_time_counts_as_expired(renew: str | None) -> None:
    odd = lease(OTHER, renewed=None)
    if renew is not None:
        odd["spec"]["renewTime"] = renew
    assert decide(odd, ME, T0, 15).action is LeaseAction.ACQUIRE


@pytest.mark.parametrize("transitions", [None, -1, "3", 2.5, False])
def test_bad_transition_counts_restart_from_zero(transitions: object) -> None:
    decision = decide(lease(OTHER, transitions=transitions), ME, T0 + timedelta(hours=1), 15)
    assert decision.spec is not None
    assert decision.spec["leaseTransitions"] == 1


def test_observation_time_overrides_a_skewed_renew_time() -> None:
    # The holder's clock runs an hour behind: its renewTime looks stale, yet we saw the
    # record change 5 s ago, so it is alive.
    skewed_behind = lease(OTHER, renewed=T0 - timedelta(hours=1))
    seen = T0 - timedelta(seconds=5)
    assert decide(skewed_behind, ME, T0, 15, observed_at=seen).action is LeaseAction.WAIT
    # The holder's clock runs ahead: renewTime looks fresh, but the record has not changed
    # for 15 s of our time, so it is dead.
    skewed_ahead = lease(OTHER, renewed=T0 + timedelta(hours=1))
    stale = T0 - timedelta(seconds=15)
    assert decide(skewed_ahead, ME, T0, 15, observed_at=stale).action is LeaseAction.ACQUIRE


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        decide(None, "", T0, 15)
    with pytest.raises(ValueError):
        decide(None, ME, datetime(2026, 1, 1), 15)
    with pytest.raises(ValueError):
        decide(None, ME, T0, 0)
    with pytest.raises(ValueError):
        release_spec(lease(ME), ME, datetime(2026, 1, 1))


def test_release_clears_the_holder_and_shortens_the_lease() -> None:
    now = T0 + timedelta(seconds=3)
    assert release_spec(lease(ME), ME, now) == {
        "holderIdentity": "",
        "leaseDurationSeconds": 1,
        "acquireTime": stamp(now),
        "renewTime": stamp(now),
        "leaseTransitions": 3,
    }


def test_release_of_a_lease_we_do_not_hold_is_nothing() -> None:
    assert release_spec(lease(OTHER), ME, T0) is None
    assert release_spec(lease(""), ME, T0) is None
    assert release_spec(None, ME, T0) is None
    assert release_spec(lease(""), "", T0) is None


def test_a_released_lease_is_taken_over_at_once() -> None:
    released = lease(ME)
    released["spec"] = release_spec(released, ME, T0)
    decision = decide(released, OTHER, T0, 15, observed_at=T0)
    assert decision.action is LeaseAction.ACQUIRE
    assert decision.spec is not None
    assert decision.spec["holderIdentity"] == OTHER
    assert decision.spec["leaseTransitions"] == 4


def test_default_identities_are_unique() -> None:
    assert default_identity() != default_identity()


@given(
    holder=st.sampled_from(["", ME, OTHER, None]),
    renewed_offset=st.integers(min_value=-100, max_value=100),
    duration=st.integers(min_value=1, max_value=60),
    transitions=st.integers(min_value=0, max_value=10**6),
    exists=st.booleans(),
)
def test_any_write_makes_us_the_holder_at_now(
    holder: str | None, renewed_offset: int, duration: int, transitions: int, exists: bool
) -> None:
    current = (
        lease(
            holder,
            renewed=T0 + timedelta(seconds=renewed_offset),
            duration=duration,
            transitions=transitions,
        )
        if exists
        else None
    )
    decision = decide(current, ME, T0, 15)
    if decision.action is LeaseAction.WAIT:
        assert decision.spec is None
        assert holder == OTHER
        assert renewed_offset + duration > 0
        return
    assert decision.spec is not None
    assert decision.spec["holderIdentity"] == ME
    assert decision.spec["renewTime"] == stamp(T0)
    assert decision.spec["leaseDurationSeconds"] == 15
    if current is None:
        assert decision.spec["leaseTransitions"] == 0
    elif holder == ME:
        assert decision.spec["leaseTransitions"] == transitions
    else:
        assert decision.spec["leaseTransitions"] == transitions + 1
