"""Who is calling, and may they: TokenReview and SubjectAccessReview, briefly cached.

Results are cached for a few seconds under a hash of the token (never the token itself),
so a burst of pushes costs one review, while a revoked token or binding stops working
within ``ttl`` seconds, as with the API server's own token cache. Rejections are cached
too, more briefly and apart (a flood of bad tokens never evicts a good one), and each
client address may have only so many tokens rejected per second, so a caller cycling
through made-up tokens cannot turn each request into a TokenReview. (A review takes a
token of the address's bucket up front, which bounds the reviews in flight, and gives it
back when the token was valid.)

That limit never refuses a token the API server signed (``signed``, usually
``kube.issuerkeys.IssuerKeys.signed``: its signature verifies against the issuer's
published keys, for our audience, unexpired): such a token cannot be made up, so its
review costs nobody's bucket, and clients behind one address (an ingress, a NAT) are not
locked out by a neighbour's garbage. Tokens of other authenticators (OIDC, webhook, static
files) are not signed by that issuer and keep the limit. A signed token the API server
rejects all the same was revoked (its bound Secret or Pod deleted): it never comes back,
so its rejection is remembered ``REVOKED_TTL`` and charged to the address like any other,
and a pile of revoked tokens costs little more than one of them.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Generic, Protocol, TypeVar

from kube.jsonapi import call_json
from kube.ratelimit import KeyedRateLimiter
from quota.names import IMAGE_GROUP
from serving import metrics

V = TypeVar("V")
REQUEST_TIMEOUT = 5
SUCCESS_TTL: Final = 10.0
"""kube-apiserver's own token cache keeps a success 10 s (``TokenSuccessCacheTTL``)."""
FAILURE_TTL: Final = 2.0
"""kube-apiserver keeps failures apart (``TokenFailureCacheTTL``, 0 by default, so that a
token that was just issued works at once). We cache them, but briefly: enough to absorb a
client retrying a bad token in a loop, short enough that a token its API server did not
know yet (a just-bound pod's) works at the client's next retry."""
REVOKED_TTL: Final = 60.0
"""How long a rejection of a token the issuer signed is remembered. kube-apiserver rejects
such a token only when its bound object is gone (checked live when its informer lacks it),
which never heals; a minute makes K revoked tokens cost K/60 reviews a second, not K/2,
and bounds what a valid token loses to the rare lookup the API server fails (it reports
that the same way)."""
UNKNOWN_TOKEN_BURST: Final = 10
"""Rejected tokens (and reviews in flight) one client address may have at once. A
registry sends valid tokens, which give their token back; ten rejections cover a
misconfigured replica's retries. client-go's default burst is also 10."""
UNKNOWN_TOKEN_QPS: Final = 1.0
"""Then one rejection a second per address."""
MAX_SOURCES: Final = 10_000
"""Client addresses with a bucket; past that the least recently seen is forgotten."""


@dataclass(frozen=True)
class User:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, list[str]] = field(default_factory=dict, hash=False, compare=False)


class TtlCache(Generic[V]):
    def __init__(
        self, ttl: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._items: dict[Any, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: Any) -> V | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is None or hit[0] < self._clock():
                return None
            return hit[1]

    def put(self, key: Any, value: V) -> None:
        with self._lock:
            if len(self._items) >= self._max:
                now = self._clock()
                self._items = {k: v for k, v in self._items.items() if v[0] >= now}
                if len(self._items) >= self._max:
                    self._items.clear()
            self._items[key] = (self._clock() + self._ttl, value)


class TokenReviewApi(Protocol):
    """``AuthenticationV1Api`` as the authenticator uses it (raw JSON answers)."""

    def create_token_review(self, body: dict[str, Any], **kwargs: Any) -> Any: ...


class SubjectAccessReviewApi(Protocol):
    """``AuthorizationV1Api`` as the authorizer uses it (raw JSON answers)."""

    def create_subject_access_review(self, body: dict[str, Any], **kwargs: Any) -> Any: ...


class TooManyReviews(Exception):
    """This client address has used up its TokenReviews of unknown tokens for now."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"retry after {retry_after:.3f} s")
        self.retry_after = retry_after


@dataclass
class _Flight:
    """A TokenReview in progress, and how many callers wait for its answer (until it is
    answered and removed)."""

    done: threading.Event = field(default_factory=threading.Event)
    waiters: int = 0


class Authenticator:
    def __init__(
        self,
        api: TokenReviewApi,
        ttl: float = SUCCESS_TTL,
        clock: Callable[[], float] = time.monotonic,
        *,
        audiences: Sequence[str] = (),
        failure_ttl: float = FAILURE_TTL,
        limiter: KeyedRateLimiter | None = None,
        signed: Callable[[str], bool] | None = None,
    ) -> None:
        """``audiences``: what a caller's token must be valid for; none means the API
        server's own (it applies them when a TokenReview names none). ``signed``: whether
        a token cannot have been made up, so that its review is never rate-limited (none:
        every unknown token is)."""
        self._api = api
        self._audiences = list(audiences)
        self._cache: TtlCache[User] = TtlCache(ttl, clock=clock)
        self._failures: TtlCache[bool] = TtlCache(failure_ttl, clock=clock)
        # Apart, so that a flood of made-up tokens never evicts what is known revoked.
        self._revoked: TtlCache[bool] = TtlCache(REVOKED_TTL, clock=clock)
        if limiter is None:
            limiter = KeyedRateLimiter(
                UNKNOWN_TOKEN_QPS, UNKNOWN_TOKEN_BURST, max_keys=MAX_SOURCES, clock=clock
            )
        self._limiter = limiter
        self._signed = signed
        self._flights: dict[str, _Flight] = {}
        self._lock = threading.Lock()

    def authenticate(self, token: str, source: str) -> User | None:
        """The user a bearer token belongs to, or None when the API server rejects it.

        ``source`` is the client's address; raises ``TooManyReviews`` when the token is
        unknown and that address may not have it reviewed yet. Concurrent calls with one
        unknown token share one review: the registry's pushes, when its cached token
        expires, cost one review and one token of the bucket, not one each.
        """
        key = hashlib.sha256(token.encode()).hexdigest()
        while True:
            user = self._cache.get(key)
            if user is not None or self._failures.get(key) or self._revoked.get(key):
                return user
            with self._lock:
                flight = self._flights.get(key)
                if flight is None:
                    flight = self._flights[key] = _Flight()
                    break
                flight.waiters += 1
            # The review is bounded by REQUEST_TIMEOUT, and its caller always sets ``done``.
            flight.done.wait()
            # Answered (now cached), or that review failed: look again, maybe review.
        try:
            return self._review_unknown(key, token, source)
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()

    def waiting_for_reviews(self) -> int:
        """Callers waiting for another's review of their token (for tests and debugging)."""
        with self._lock:
            return sum(flight.waiters for flight in self._flights.values())

    def _review_unknown(self, key: str, token: str, source: str) -> User | None:
        if self._signed is not None and self._signed(token):
            # Minted by the API server, so not made up: reviewed without waiting for the
            # address's bucket. Rejected all the same, it was revoked: remembered longer,
            # and charged to the address (if it has a token left) like any rejection.
            user = self._settle(key, token, failures=self._revoked)
            if user is None:
                self._limiter.take_or_wait(source)
            return user
        wait = self._limiter.take_or_wait(source)
        if wait > 0:
            raise TooManyReviews(wait)
        try:
            user = self._settle(key, token)
        except Exception:
            self._limiter.give_back(source)  # the API server failed, not the caller
            raise
        if user is not None:
            # Only rejected tokens count against an address: a registry whose replicas
            # rotate valid tokens (or a test suite minting one per case) is never throttled.
            self._limiter.give_back(source)
        return user

    def _settle(self, key: str, token: str, failures: TtlCache[bool] | None = None) -> User | None:
        """Review ``token`` and cache the answer under ``key`` (a rejection in ``failures``,
        by default the short-lived one)."""
        status = self._review(token)
        if not status.get("authenticated") or not self._for_us(status):
            (self._failures if failures is None else failures).put(key, True)
            return None
        info = status.get("user") or {}
        user = User(
            name=info.get("username", ""),
            uid=info.get("uid", ""),
            groups=tuple(info.get("groups") or ()),
            extra=dict(info.get("extra") or {}),
        )
        self._cache.put(key, user)
        return user

    def _for_us(self, status: dict[str, Any]) -> bool:
        """With audiences asked for, the answer must name one of them, as client-go's
        webhook authenticator requires: an API server that ignored them would not."""
        if not self._audiences:
            return True
        answered = status.get("audiences") or []
        return isinstance(answered, list) and bool(set(self._audiences) & set(answered))

    def _review(self, token: str) -> dict[str, Any]:
        spec: dict[str, Any] = {"token": token}
        if self._audiences:
            spec["audiences"] = self._audiences
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}
        try:
            answer = call_json(self._api.create_token_review, body, timeout=REQUEST_TIMEOUT)
            status = answer.get("status") or {}
        except Exception:
            metrics.TOKEN_REVIEWS.labels("error").inc()
            raise
        authenticated = bool(status.get("authenticated"))
        metrics.TOKEN_REVIEWS.labels("authenticated" if authenticated else "rejected").inc()
        return dict(status)


class Authorizer:
    def __init__(
        self,
        api: SubjectAccessReviewApi,
        ttl: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._cache: TtlCache[bool] = TtlCache(ttl, clock=clock)

    def may_create_pushreview(self, user: User, namespace: str) -> bool:
        return self.may(user, namespace, "create", "pushreviews")

    def may(
        self, user: User, namespace: str, verb: str, resource: str, subresource: str = ""
    ) -> bool:
        """Whether ``user`` may ``verb`` ``resource`` (``image.alauda.io``) in ``namespace``."""
        extra = tuple(sorted((k, tuple(v)) for k, v in user.extra.items()))
        key = (user.name, user.uid, user.groups, extra, namespace, verb, resource, subresource)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        attributes = {
            "namespace": namespace,
            "verb": verb,
            "group": IMAGE_GROUP,
            "resource": resource,
            **({"subresource": subresource} if subresource else {}),
        }
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user.name,
                "uid": user.uid,
                "groups": list(user.groups),
                "extra": user.extra,
                "resourceAttributes": attributes,
            },
        }
        answer = call_json(self._api.create_subject_access_review, body, timeout=REQUEST_TIMEOUT)
        allowed = bool((answer.get("status") or {}).get("allowed"))
        self._cache.put(key, allowed)
        return allowed
