"""Token lifetime policy and the token timestamps stored on the managed Secret.

Tokens are refreshed at 60 % of their lifetime, so a failing refresh still leaves
40 % of the lifetime to retry before pods lose pull access. Time is always passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Final

from quota.pullsecrets.dockerconfig import DockerConfig, unique_hostnames
from quota.pullsecrets.names import ANNOTATION_TOKEN_EXPIRATION, ANNOTATION_TOKEN_ISSUED
from quota.pullsecrets.reasons import Reason
from quota.timestamps import format_rfc3339, parse_rfc3339, require_aware

REFRESH_FRACTION: Final = Fraction(3, 5)


@dataclass(frozen=True)
class TokenTimes:
    """When a token was issued and when it expires; ``expires`` is after ``issued``."""

    issued: datetime
    expires: datetime

    def __post_init__(self) -> None:
        require_aware(issued=self.issued, expires=self.expires)
        if self.expires <= self.issued:
            raise ValueError("expires must be after issued")


def next_refresh_at(issued: datetime, expires: datetime) -> datetime:
    """The instant at 60 % of the lifetime, rounded down to the microsecond (never late).

    A lifetime that is zero or negative refreshes at ``issued``.
    """
    require_aware(issued=issued, expires=expires)
    lifetime = expires - issued
    if lifetime <= timedelta(0):
        return issued
    micros = lifetime // timedelta(microseconds=1)
    offset = micros * REFRESH_FRACTION.numerator // REFRESH_FRACTION.denominator
    return issued + timedelta(microseconds=offset)


def needs_refresh(issued: datetime, expires: datetime, now: datetime) -> bool:
    """True at or after 60 % of the token lifetime."""
    require_aware(now=now)
    return now >= next_refresh_at(issued, expires)


def refresh_delay(issued: datetime, expires: datetime, now: datetime) -> timedelta:
    """How long the reconciler may wait before refreshing; zero when already due."""
    require_aware(now=now)
    return max(next_refresh_at(issued, expires) - now, timedelta(0))


def token_time_annotations(issued: datetime, expires: datetime) -> dict[str, str]:
    """Annotations recording a token's issue and expiration time on its Secret."""
    times = TokenTimes(issued, expires)
    return {
        ANNOTATION_TOKEN_ISSUED: format_rfc3339(times.issued),
        ANNOTATION_TOKEN_EXPIRATION: format_rfc3339(times.expires),
    }


def read_token_times(annotations: Mapping[str, object] | None) -> TokenTimes | None:
    """Read back :func:`token_time_annotations`; None when missing, malformed or inverted."""
    if not isinstance(annotations, Mapping):
        return None
    issued = parse_rfc3339(annotations.get(ANNOTATION_TOKEN_ISSUED))
    expires = parse_rfc3339(annotations.get(ANNOTATION_TOKEN_EXPIRATION))
    if issued is None or expires is None or expires <= issued:
        return None
    return TokenTimes(issued, expires)


def earliest_token_expiry(secrets: Iterable[object]) -> datetime | None:
    """The earliest token expiry among ``secrets`` (managed Secret objects); None when no
    Secret records readable token times."""
    expiries = []
    for secret in secrets:
        metadata = secret.get("metadata") if isinstance(secret, Mapping) else None
        times = read_token_times(
            metadata.get("annotations") if isinstance(metadata, Mapping) else None
        )
        if times is not None:
            expiries.append(times.expires)
    return min(expiries, default=None)


def refresh_reason(
    times: TokenTimes | None,
    config: DockerConfig | None,
    desired_hostnames: Iterable[str],
    now: datetime,
) -> Reason | None:
    """Why the token in a Secret must be replaced, or None when it can stay.

    ``config`` is the parsed payload (None when missing or unparseable). Hostnames are
    compared as sets: the payload is canonical, order carries no meaning.
    """
    if config is None:
        return Reason.BAD_DATA
    if times is None:
        return Reason.TOKEN_TIMES_INVALID
    if set(config.hostnames) != set(unique_hostnames(desired_hostnames)):
        return Reason.HOSTNAMES_CHANGED
    if needs_refresh(times.issued, times.expires, now):
        return Reason.TOKEN_EXPIRING
    return None
