from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quota.pullsecrets.dockerconfig import DockerConfig
from quota.pullsecrets.names import ANNOTATION_TOKEN_EXPIRATION, ANNOTATION_TOKEN_ISSUED
from quota.pullsecrets.reasons import Reason
from quota.pullsecrets.refresh import (
    TokenTimes,
    earliest_token_expiry,
    needs_refresh,
    next_refresh_at,
    read_token_times,
    refresh_delay,
    refresh_reason,
    token_time_annotations,
)
from quota.timestamps import format_rfc3339

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
LIFETIME = timedelta(hours=1)
"""The controller's default token lifetime (controller.config)."""


@dataclass
class FakeClock:
    """A controllable clock: the rules take ``now``, the test moves it."""

    current: datetime

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


def due(clock: FakeClock, issued: datetime, expires: datetime) -> bool:
    return needs_refresh(issued, expires, clock.now())


def test_sixty_percent_rule_with_a_controllable_clock() -> None:
    clock = FakeClock(T0)
    expires = T0 + LIFETIME
    assert not due(clock, T0, expires)
    clock.advance(seconds=2159)
    assert not due(clock, T0, expires)
    clock.advance(microseconds=999_999)
    assert not due(clock, T0, expires)
    clock.advance(microseconds=1)  # exactly 2160 s = 60 % of 3600 s
    assert due(clock, T0, expires)
    clock.advance(seconds=1440)  # at expiry
    assert due(clock, T0, expires)
    clock.advance(days=1)  # long expired
    assert due(clock, T0, expires)


def test_next_refresh_at_and_delay() -> None:
    expires = T0 + timedelta(hours=1)
    assert next_refresh_at(T0, expires) == T0 + timedelta(seconds=2160)
    assert refresh_delay(T0, expires, T0) == timedelta(seconds=2160)
    assert refresh_delay(T0, expires, T0 + timedelta(seconds=2000)) == timedelta(seconds=160)
    assert refresh_delay(T0, expires, T0 + timedelta(seconds=2160)) == timedelta(0)
    assert refresh_delay(T0, expires, T0 + timedelta(hours=5)) == timedelta(0)


def test_next_refresh_rounds_down_never_late() -> None:
    # 7 µs lifetime: 60 % is 4.2 µs, rounded down to 4 µs.
    assert next_refresh_at(T0, T0 + timedelta(microseconds=7)) == T0 + timedelta(microseconds=4)
    assert next_refresh_at(T0, T0 + timedelta(seconds=1)) == T0 + timedelta(milliseconds=600)


@pytest.mark.parametrize("lifetime", [timedelta(0), timedelta(seconds=-10)])
def test_non_positive_lifetime_refreshes_at_once(lifetime: timedelta) -> None:
    assert next_refresh_at(T0, T0 + lifetime) == T0
    assert needs_refresh(T0, T0 + lifetime, T0)


def test_other_time_zones_compare_as_instants() -> None:
    plus2 = timezone(timedelta(hours=2))
    issued = T0.astimezone(plus2)
    expires = T0 + timedelta(hours=1)
    assert next_refresh_at(issued, expires) == T0 + timedelta(seconds=2160)
    assert not needs_refresh(issued, expires, (T0 + timedelta(seconds=2159)).astimezone(plus2))


def test_naive_datetimes_are_rejected() -> None:
    naive = datetime(2025, 3, 1, 12)
    with pytest.raises(ValueError):
        next_refresh_at(naive, T0)
    with pytest.raises(ValueError):
        next_refresh_at(T0, naive)
    with pytest.raises(ValueError):
        needs_refresh(T0, T0 + timedelta(hours=1), naive)
    with pytest.raises(ValueError):
        refresh_delay(T0, T0 + timedelta(hours=1), naive)
    with pytest.raises(ValueError):
        format_rfc3339(naive)


lifetimes = st.integers(min_value=1, max_value=10**12).map(lambda us: timedelta(microseconds=us))
elapsed = st.integers(min_value=-(10**12), max_value=2 * 10**12)


@given(lifetimes, elapsed)
def test_property_refresh_at_sixty_percent(lifetime: timedelta, elapsed_us: int) -> None:
    expires = T0 + lifetime
    now = T0 + timedelta(microseconds=elapsed_us)
    lifetime_us = lifetime // timedelta(microseconds=1)
    at = next_refresh_at(T0, expires)
    # Never later than 60 %, less than 1 µs earlier.
    assert 0 <= 3 * lifetime_us - 5 * ((at - T0) // timedelta(microseconds=1)) < 5
    assert needs_refresh(T0, expires, now) == (now >= at)
    if 5 * elapsed_us >= 3 * lifetime_us:
        assert needs_refresh(T0, expires, now)
    if elapsed_us < 0:
        assert not needs_refresh(T0, expires, now)
    assert refresh_delay(T0, expires, now) == max(at - now, timedelta(0))


def test_token_time_annotations_round_trip() -> None:
    expires = T0 + timedelta(hours=1)
    annotations = token_time_annotations(T0, expires)
    assert annotations == {
        ANNOTATION_TOKEN_ISSUED: "2025-03-01T12:00:00Z",
        ANNOTATION_TOKEN_EXPIRATION: "2025-03-01T13:00:00Z",
    }
    assert read_token_times({**annotations, "other": "x"}) == TokenTimes(T0, expires)


def test_token_time_annotations_rejects_inverted_times() -> None:
    with pytest.raises(ValueError):
        token_time_annotations(T0, T0)


@pytest.mark.parametrize(
    "annotations",
    [
        None,
        "junk",
        {},
        {ANNOTATION_TOKEN_ISSUED: "2025-03-01T12:00:00Z"},
        {ANNOTATION_TOKEN_EXPIRATION: "2025-03-01T13:00:00Z"},
        {ANNOTATION_TOKEN_ISSUED: "junk", ANNOTATION_TOKEN_EXPIRATION: "2025-03-01T13:00:00Z"},
        {ANNOTATION_TOKEN_ISSUED: "2025-03-01T12:00:00Z", ANNOTATION_TOKEN_EXPIRATION: 5},
        {
            ANNOTATION_TOKEN_ISSUED: "2025-03-01T13:00:00Z",
            ANNOTATION_TOKEN_EXPIRATION: "2025-03-01T12:00:00Z",
        },
        {
            ANNOTATION_TOKEN_ISSUED: "2025-03-01T12:00:00Z",
            ANNOTATION_TOKEN_EXPIRATION: "2025-03-01T12:00:00Z",
        },
    ],
)
def test_read_token_times_invalid(annotations: object) -> None:
    assert read_token_times(annotations) is None  # type: ignore[arg-type]


def test_token_times_validation() -> None:
    with pytest.raises(ValueError):
        TokenTimes(T0, T0 - timedelta(seconds=1))
    with pytest.raises(ValueError):
        TokenTimes(datetime(2025, 1, 1), datetime(2025, 1, 2))


HOSTS = ["a.example", "b.example"]
TIMES = TokenTimes(T0, T0 + timedelta(hours=1))
CONFIG = DockerConfig(tuple(HOSTS), "token")


def test_refresh_reason_branches() -> None:
    fresh = T0 + timedelta(seconds=60)
    assert refresh_reason(TIMES, CONFIG, HOSTS, fresh) is None
    assert refresh_reason(TIMES, CONFIG, [*reversed(HOSTS), " a.example"], fresh) is None
    assert refresh_reason(TIMES, None, HOSTS, fresh) is Reason.BAD_DATA
    assert refresh_reason(None, CONFIG, HOSTS, fresh) is Reason.TOKEN_TIMES_INVALID
    assert refresh_reason(TIMES, CONFIG, HOSTS[:1], fresh) is Reason.HOSTNAMES_CHANGED
    assert refresh_reason(TIMES, CONFIG, [*HOSTS, "c"], fresh) is Reason.HOSTNAMES_CHANGED
    due_at = T0 + timedelta(seconds=2160)
    assert refresh_reason(TIMES, CONFIG, HOSTS, due_at) is Reason.TOKEN_EXPIRING
    assert refresh_reason(TIMES, CONFIG, HOSTS, due_at - timedelta(microseconds=1)) is None


@pytest.mark.parametrize("naive", ["issued", "expires"])
def test_token_times_refuse_either_naive_time_by_name(naive: str) -> None:
    times = {"issued": T0, "expires": T0 + timedelta(hours=1)}
    times[naive] = times[naive].replace(tzinfo=None)
    with pytest.raises(ValueError, match=f"^{naive} must be timezone-aware"):
        TokenTimes(**times)


def test_token_times_refuse_an_expiry_before_issue() -> None:
    with pytest.raises(ValueError, match=r"^expires must be after issued$"):
        TokenTimes(T0, T0)


def test_refresh_point_is_exact_for_the_longest_lifetimes() -> None:
    """Integer arithmetic to the microsecond, where float division would round."""
    issued = datetime(1, 1, 1, tzinfo=UTC)
    expires = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    micros = (expires - issued) // timedelta(microseconds=1)
    expected = issued + timedelta(microseconds=micros * 3 // 5)
    assert next_refresh_at(issued, expires) == expected


def secret_expiring(expires: datetime | None, issued: datetime | None = None) -> dict[str, object]:
    annotations = {}
    if expires is not None:
        issued = issued or expires - timedelta(hours=1)
        annotations = token_time_annotations(issued, expires)
    return {"metadata": {"name": "s", "namespace": "n", "annotations": annotations}}


def test_the_earliest_token_expiry_of_many_secrets() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    secrets = [secret_expiring(t + timedelta(minutes=m)) for m in (30, 5, 50)]
    assert earliest_token_expiry(secrets) == t + timedelta(minutes=5)


def test_secrets_without_readable_token_times_are_left_out() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    unreadable = {"metadata": {"annotations": {ANNOTATION_TOKEN_EXPIRATION: "soon"}}}
    secrets = [secret_expiring(None), unreadable, {"metadata": None}, secret_expiring(t)]
    assert earliest_token_expiry(secrets) == t


def test_no_token_means_no_expiry() -> None:
    assert earliest_token_expiry([]) is None
    assert earliest_token_expiry([secret_expiring(None)]) is None
