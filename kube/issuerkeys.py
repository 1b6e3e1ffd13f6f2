"""Which bearer tokens this cluster's API server signed, told without asking it.

A service-account token is a JWT signed with the API server's service-account key, whose
public half the API server publishes (OIDC discovery: ``/.well-known/openid-configuration``
names the issuer, ``/openid/v1/jwks`` holds the keys). A token that verifies against those
keys, for the audience asked and that issuer, unexpired, was minted by the API server:
nobody can make one up. Callers use that to sort TokenReviews: made-up tokens may be
rate-limited, minted ones never are. TokenReview stays the authority (revocation, bound
objects, other authenticators); this check only sorts.

The key set is learnt two ways. A background thread (``start``) fetches it at once and then
every ``REFRESH_SECONDS``, whatever requests do, so that made-up key ids, which anyone can
write into a token, can never keep a rotated key from being learnt for longer than that.
A token naming a key id we do not know (the API server's key was rotated a moment ago)
also asks for a fetch, at most ``REFRESH_QPS`` times a second with a burst of
``REFRESH_BURST``, so that a forged key id does not turn every request into a fetch.
Fetches are single-flight and never hold a lock over I/O: while one is under way, other
callers judge with the keys we have. A failed fetch keeps the keys we had (none at first:
then nothing is vouched for, and every token is treated as callers did before).
"""

from __future__ import annotations

import enum
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import jwt
from kubernetes import client

from kube.ratelimit import RateLimiter

log = logging.getLogger(__name__)

DISCOVERY_PATH: Final = "/.well-known/openid-configuration"
JWKS_PATH: Final = "/openid/v1/jwks"
"""Served by kube-apiserver itself whatever ``--service-account-jwks-uri`` says; readable
with the ClusterRole ``system:service-account-issuer-discovery``'s two non-resource URLs."""
FETCH_TIMEOUT: Final = 5.0
"""Seconds for one GET: the same bound as our TokenReviews (``REQUEST_TIMEOUT``)."""
REFRESH_SECONDS: Final = 60.0
"""The background fetch's period. kube-apiserver loads its signing keys only when it starts,
so a new key comes with a restart; a minute (the controller's signing-key probe period,
``KEY_PROBE_SECONDS``) bounds how long a rotated key's tokens go unrecognised while
made-up key ids keep the on-demand budget empty, for one small GET pair a minute."""
REFRESH_QPS: Final = 1.0
REFRESH_BURST: Final = 1
"""At most one fetch a second: kube-apiserver serves the key set from memory, so that
costs it nothing, while a token signed by a key new to us waits at most a second to be
known (a rotation's first tokens arriving while made-up key ids keep the bucket empty)."""
LEEWAY_SECONDS: Final = 60.0
"""kube-apiserver validates ``exp`` and ``nbf`` with go-jose's ``DefaultLeeway`` (1 min):
a token it still accepts is never judged expired here."""


class Verdict(enum.Enum):
    SIGNED = "signed"
    """Verified against the issuer's key, for the audience, unexpired: minted, not made up."""
    UNKNOWN_KEY = "unknown-key"
    """Names a key id the key set lacks: fetch it again, then judge again."""
    NOT_SIGNED = "not-signed"
    """Anything else: not a JWT, a bad signature, another issuer or audience, expired."""


@dataclass(frozen=True)
class KeySet:
    """The issuer's public keys by key id, as fetched at ``fetched_at`` (monotonic)."""

    issuer: str
    keys: Mapping[str, jwt.PyJWK] = field(hash=False, compare=False)
    fetched_at: float = 0.0


def parse_key_set(discovery: bytes, jwks: bytes, fetched_at: float) -> KeySet:
    """The discovery document's ``issuer`` and the JWKS's usable keys. Raises
    ``ValueError`` when either cannot be used (keys of a type PyJWT lacks are skipped)."""
    try:
        issuer = json.loads(discovery).get("issuer")
        key_set = jwt.PyJWKSet.from_dict(json.loads(jwks))
    except (ValueError, AttributeError, jwt.PyJWTError) as err:
        raise ValueError(f"unusable issuer discovery or key set: {err}") from err
    if not isinstance(issuer, str) or not issuer:
        raise ValueError("the discovery document names no issuer")
    keys = {key.key_id: key for key in key_set.keys if key.key_id}
    return KeySet(issuer, keys, fetched_at)


def judge(token: str, keys: KeySet, audiences: Sequence[str], now: float) -> Verdict:
    """Whether ``token`` was signed by one of ``keys`` for one of ``audiences`` (none: the
    issuer, which is the API server's own audience unless ``--api-audiences`` says
    otherwise) and by their issuer, and is not expired at ``now`` (wall clock)."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        return Verdict.NOT_SIGNED
    if kid is not None and not isinstance(kid, str):
        return Verdict.NOT_SIGNED
    if kid is None:
        candidates = list(keys.keys.values())
    elif kid in keys.keys:
        candidates = [keys.keys[kid]]
    else:
        return Verdict.UNKNOWN_KEY
    wanted = list(audiences) or [keys.issuer]
    for key in candidates:
        try:
            claims = jwt.decode(
                token,
                key,
                # The key's own algorithm only: never "none", never HMAC with a public key.
                algorithms=[key.algorithm_name],
                audience=wanted,
                issuer=keys.issuer,
                # Time is checked below against ``now``, a parameter, as all our rules do.
                options={
                    "require": ["exp", "iss", "aud"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError:
            continue
        return Verdict.SIGNED if _in_lifetime(claims, now) else Verdict.NOT_SIGNED
    return Verdict.NOT_SIGNED


def _in_lifetime(claims: Mapping[str, Any], now: float) -> bool:
    """``exp`` (required), ``nbf`` and ``iat`` (if present) as kube-apiserver reads them:
    go-jose's ``Claims.Validate`` with its leeway."""
    exp = _seconds(claims.get("exp"))
    if exp is None or now > exp + LEEWAY_SECONDS:
        return False
    for name in ("nbf", "iat"):
        if name in claims:
            start = _seconds(claims[name])
            if start is None or now < start - LEEWAY_SECONDS:
                return False
    return True


def _seconds(value: Any) -> float | None:
    """A NumericDate (JSON number, not a boolean), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def api_fetcher(api: client.ApiClient) -> Callable[[str], bytes]:
    """GETs ``DISCOVERY_PATH`` or ``JWKS_PATH`` with the process's own credentials (the
    client's typed calls for them), raw."""
    calls = {
        DISCOVERY_PATH: client.WellKnownApi(api).get_service_account_issuer_open_id_configuration,
        JWKS_PATH: client.OpenidApi(api).get_service_account_issuer_open_id_keyset,
    }

    def fetch(path: str) -> bytes:
        response = calls[path](_preload_content=False, _request_timeout=FETCH_TIMEOUT)
        return bytes(response.data)

    return fetch


class IssuerKeys:
    """Tells tokens the API server signed for ``audiences`` from all others (``signed``),
    with the issuer's key set fetched through ``fetch`` (a path in, the body out)."""

    def __init__(
        self,
        fetch: Callable[[str], bytes],
        audiences: Sequence[str] = (),
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._fetch = fetch
        self._audiences = tuple(audiences)
        self._clock = clock
        self._wall = wall
        self._limiter = limiter or RateLimiter(REFRESH_QPS, REFRESH_BURST, clock=clock)
        self._keys: KeySet | None = None
        self._fetching = False
        self._lock = threading.Lock()
        """Guards ``_keys`` and ``_fetching``; never held over a fetch, so no caller queues
        behind the API server (two 5 s GETs at worst)."""

    def start(self, stop: threading.Event | None = None) -> IssuerKeys:
        """Run the background refresh (``run``) on a daemon thread; call it in the process
        that serves (threads do not survive gunicorn's fork)."""
        thread = threading.Thread(
            target=self.run, args=(stop or threading.Event(),), name="issuer-keys", daemon=True
        )
        thread.start()
        return self

    def run(self, stop: threading.Event) -> None:
        """Fetch the keys now, then every ``REFRESH_SECONDS`` until ``stop``."""
        self.refresh()
        while not stop.wait(REFRESH_SECONDS):
            self.refresh()

    def signed(self, token: str) -> bool:
        keys = self._keys
        if keys is None:
            keys = self._refresh_on_demand(None)
            if keys is None:
                return False
        verdict = judge(token, keys, self._audiences, self._wall())
        if verdict is Verdict.UNKNOWN_KEY:
            fresh = self._refresh_on_demand(keys)
            if fresh is None or fresh is keys:
                return False
            verdict = judge(token, fresh, self._audiences, self._wall())
        return verdict is Verdict.SIGNED

    def refresh(self) -> KeySet | None:
        """Fetch the key set unless a fetch is under way (single-flight: then the keys in
        force now, without waiting); the keys in force after it either way."""
        with self._lock:
            if self._fetching:
                return self._keys
            self._fetching = True
        fetched: KeySet | None = None
        try:
            fetched = parse_key_set(
                self._fetch(DISCOVERY_PATH), self._fetch(JWKS_PATH), self._clock()
            )
        except Exception as err:  # the API server's failure: keep what we had
            log.warning("cannot fetch the service-account issuer's keys: %s", err)
        finally:
            with self._lock:
                self._fetching = False
                if fetched is not None:
                    self._keys = fetched
                keys = self._keys
        return keys

    def _refresh_on_demand(self, seen: KeySet | None) -> KeySet | None:
        """A fetch a token asked for (no keys yet, or an unknown key id): none when the keys
        changed since ``seen`` (judge with those) or the on-demand budget is spent."""
        keys = self._keys
        if keys is not seen or not self._limiter.try_acquire():
            return keys
        return self.refresh()
