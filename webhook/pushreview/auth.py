"""Who is calling, and may they: TokenReview and SubjectAccessReview, briefly cached.

Results are cached for a few seconds under a hash of the token (never the token itself),
so a burst of pushes costs one review, while a revoked token or binding stops working
within ``ttl`` seconds, as with the API server's own webhook authenticator cache.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

V = TypeVar("V")
REQUEST_TIMEOUT = 5


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


class Authenticator:
    def __init__(
        self, api: TokenReviewApi, ttl: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._api = api
        self._cache: TtlCache[User] = TtlCache(ttl, clock=clock)

    def authenticate(self, token: str) -> User | None:
        """The user a bearer token belongs to, or None when the API server rejects it."""
        key = hashlib.sha256(token.encode()).hexdigest()
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token},
        }
        response = self._api.create_token_review(
            body, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
        )
        status = json.loads(response.data).get("status") or {}
        if not status.get("authenticated"):
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
        extra = tuple(sorted((k, tuple(v)) for k, v in user.extra.items()))
        key = (user.name, user.uid, user.groups, extra, namespace)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user.name,
                "uid": user.uid,
                "groups": list(user.groups),
                "extra": user.extra,
                "resourceAttributes": {
                    "namespace": namespace,
                    "verb": "create",
                    "group": "image.alauda.io",
                    "resource": "pushreviews",
                },
            },
        }
        response = self._api.create_subject_access_review(
            body, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
        )
        allowed = bool((json.loads(response.data).get("status") or {}).get("allowed"))
        self._cache.put(key, allowed)
        return allowed
