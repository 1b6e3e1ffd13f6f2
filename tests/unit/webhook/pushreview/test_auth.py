"""TokenReview/SubjectAccessReview callers and their TTL cache, with fake APIs and clocks."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from quota.objects import Obj
from webhook.pushreview.auth import REQUEST_TIMEOUT, Authenticator, Authorizer, TtlCache, User

TOKEN = "eyJhbGciOiJSUzI1NiJ9.secret-token-value.signature"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Raw:
    data: bytes


# --- TtlCache ----------------------------------------------------------------------------


def test_cache_entries_live_for_ttl_then_expire() -> None:
    clock = FakeClock()
    cache: TtlCache[str] = TtlCache(10.0, clock=clock)
    cache.put("k", "v")
    assert cache.get("k") == "v"
    clock.now += 9.5
    assert cache.get("k") == "v"
    clock.now += 1.0
    assert cache.get("k") is None
    assert cache.get("missing") is None


def test_put_refreshes_the_expiry() -> None:
    clock = FakeClock()
    cache: TtlCache[int] = TtlCache(10.0, clock=clock)
    cache.put("k", 1)
    clock.now += 8
    cache.put("k", 2)
    clock.now += 8
    assert cache.get("k") == 2


def test_a_full_cache_drops_expired_entries_first() -> None:
    clock = FakeClock()
    cache: TtlCache[str] = TtlCache(10.0, max_entries=3, clock=clock)
    cache.put("old-1", "a")
    cache.put("old-2", "b")
    clock.now += 5
    cache.put("live", "c")
    clock.now += 6  # the two old ones are expired, "live" is not
    cache.put("new", "d")
    assert set(cache._items) == {"live", "new"}
    assert cache.get("live") == "c"
    assert cache.get("new") == "d"


def test_a_cache_full_of_live_entries_is_cleared_rather_than_grown() -> None:
    clock = FakeClock()
    cache: TtlCache[str] = TtlCache(10.0, max_entries=2, clock=clock)
    cache.put("a", "1")
    cache.put("b", "2")
    cache.put("c", "3")
    assert len(cache._items) <= 2
    assert cache.get("c") == "3"


@given(
    st.lists(
        st.tuples(st.integers(0, 20), st.floats(0, 5, allow_nan=False)), min_size=1, max_size=60
    ),
    st.integers(1, 6),
)
def test_the_cache_never_holds_more_than_max_entries(
    ops: list[tuple[int, float]], max_entries: int
) -> None:
    clock = FakeClock()
    cache: TtlCache[int] = TtlCache(3.0, max_entries=max_entries, clock=clock)
    for key, step in ops:
        clock.now += step
        cache.put(key, key)
        assert len(cache._items) <= max_entries
        assert cache.get(key) == key, "what was just put is readable"


# --- Authenticator -----------------------------------------------------------------------


class FakeAuthenticationApi:
    def __init__(self, users: dict[str, Obj]) -> None:
        self.users = users
        self.bodies: list[Obj] = []
        self.kwargs: list[dict[str, Any]] = []

    def create_token_review(self, body: Obj, **kwargs: Any) -> Raw:
        self.bodies.append(copy.deepcopy(body))
        self.kwargs.append(kwargs)
        user = self.users.get(body["spec"]["token"])
        status: Obj = {"authenticated": user is not None}
        if user is not None:
            status["user"] = user
        return Raw(json.dumps({**body, "status": status}).encode())


ALICE = {
    "username": "system:serviceaccount:team-a:builder",
    "uid": "uid-alice",
    "groups": ["system:serviceaccounts", "system:serviceaccounts:team-a"],
    "extra": {"authentication.kubernetes.io/pod-name": ["p"]},
}


def authenticator(api: FakeAuthenticationApi) -> Authenticator:
    return Authenticator(api, ttl=10.0)


def test_a_valid_token_yields_the_user() -> None:
    api = FakeAuthenticationApi({TOKEN: ALICE})
    user = authenticator(api).authenticate(TOKEN)
    assert user == User(
        "system:serviceaccount:team-a:builder",
        "uid-alice",
        ("system:serviceaccounts", "system:serviceaccounts:team-a"),
    )
    assert user is not None and user.extra == ALICE["extra"]
    assert api.bodies == [
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": TOKEN},
        }
    ]
    assert api.kwargs[0].get("_preload_content") is False


def test_an_authenticated_result_is_cached() -> None:
    api = FakeAuthenticationApi({TOKEN: ALICE})
    auth = authenticator(api)
    first = auth.authenticate(TOKEN)
    second = auth.authenticate(TOKEN)
    assert first is not None and first == second
    assert len(api.bodies) == 1


def test_the_cache_expires_and_a_revoked_token_stops_working() -> None:
    api = FakeAuthenticationApi({TOKEN: ALICE})
    clock = FakeClock()
    auth = Authenticator(api, ttl=10.0, clock=clock)
    assert auth.authenticate(TOKEN) is not None
    del api.users[TOKEN]
    clock.now += 5
    assert auth.authenticate(TOKEN) is not None, "within ttl the cached answer stands"
    clock.now += 6
    assert auth.authenticate(TOKEN) is None
    assert len(api.bodies) == 2


def test_a_rejected_token_is_none_and_not_cached() -> None:
    api = FakeAuthenticationApi({})
    auth = authenticator(api)
    assert auth.authenticate("bad") is None
    assert auth._cache._items == {}
    api.users["bad"] = ALICE  # e.g. a token that became valid (just issued)
    assert auth.authenticate("bad") is not None
    assert len(api.bodies) == 2


def test_the_cache_key_never_contains_the_raw_token() -> None:
    api = FakeAuthenticationApi({TOKEN: ALICE, "short": ALICE})
    auth = authenticator(api)
    auth.authenticate(TOKEN)
    auth.authenticate("short")
    keys = list(auth._cache._items)
    assert len(keys) == 2
    for key in keys:
        assert TOKEN not in repr(key)
        assert "secret-token-value" not in repr(key)
        assert "short" not in repr(key)


def test_distinct_tokens_are_reviewed_separately() -> None:
    bob = {**ALICE, "username": "bob", "uid": "uid-bob"}
    api = FakeAuthenticationApi({"t-alice": ALICE, "t-bob": bob})
    auth = authenticator(api)
    alice_user = auth.authenticate("t-alice")
    bob_user = auth.authenticate("t-bob")
    assert alice_user is not None and bob_user is not None
    assert (alice_user.name, bob_user.name) == (ALICE["username"], "bob")


# --- Authorizer --------------------------------------------------------------------------


class FakeAuthorizationApi:
    def __init__(self, allowed: set[tuple[str, str]]) -> None:
        self.allowed = allowed
        self.bodies: list[Obj] = []
        self.kwargs: list[dict[str, Any]] = []

    def create_subject_access_review(self, body: Obj, **kwargs: Any) -> Raw:
        self.bodies.append(copy.deepcopy(body))
        self.kwargs.append(kwargs)
        spec = body["spec"]
        ok = (spec["user"], spec["resourceAttributes"]["namespace"]) in self.allowed
        return Raw(json.dumps({**body, "status": {"allowed": ok}}).encode())


USER = User(
    "system:serviceaccount:team-a:builder",
    "uid-alice",
    ("system:serviceaccounts", "system:authenticated"),
    {"k": ["v"]},
)


def authorizer(api: FakeAuthorizationApi) -> Authorizer:
    return Authorizer(api, ttl=10.0)


def test_the_sar_asks_for_create_pushreviews_in_the_namespace_with_the_groups() -> None:
    api = FakeAuthorizationApi({(USER.name, "team-a")})
    assert authorizer(api).may_create_pushreview(USER, "team-a") is True
    assert api.bodies == [
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": USER.name,
                "uid": "uid-alice",
                "groups": ["system:serviceaccounts", "system:authenticated"],
                "extra": {"k": ["v"]},
                "resourceAttributes": {
                    "namespace": "team-a",
                    "verb": "create",
                    "group": "image.alauda.io",
                    "resource": "pushreviews",
                },
            },
        }
    ]
    assert api.kwargs[0].get("_preload_content") is False


def test_decisions_are_cached_per_namespace() -> None:
    api = FakeAuthorizationApi({(USER.name, "team-a")})
    authz = authorizer(api)
    assert authz.may_create_pushreview(USER, "team-a") is True
    assert authz.may_create_pushreview(USER, "team-a") is True
    assert len(api.bodies) == 1
    assert authz.may_create_pushreview(USER, "team-b") is False
    assert authz.may_create_pushreview(USER, "team-b") is False
    assert len(api.bodies) == 2


def test_users_differing_in_groups_are_asked_separately() -> None:
    api = FakeAuthorizationApi({(USER.name, "team-a")})
    authz = authorizer(api)
    authz.may_create_pushreview(USER, "team-a")
    other = User(USER.name, USER.uid, ("system:authenticated",))
    authz.may_create_pushreview(other, "team-a")
    assert len(api.bodies) == 2
    assert api.bodies[1]["spec"]["groups"] == ["system:authenticated"]


def test_a_missing_status_is_a_denial() -> None:
    class NoStatus(FakeAuthorizationApi):
        def create_subject_access_review(self, body: Obj, **kwargs: Any) -> Raw:
            self.bodies.append(body)
            return Raw(b"{}")

    assert authorizer(NoStatus(set())).may_create_pushreview(USER, "team-a") is False


# --- defaults and call arguments ---------------------------------------------------------


def test_reviews_are_raw_and_bounded_by_the_request_timeout() -> None:
    authentication = FakeAuthenticationApi({TOKEN: ALICE})
    Authenticator(authentication).authenticate(TOKEN)
    authorization = FakeAuthorizationApi({(USER.name, "team-a")})
    Authorizer(authorization).may_create_pushreview(USER, "team-a")
    for kwargs in (authentication.kwargs[0], authorization.kwargs[0]):
        assert kwargs == {"_preload_content": False, "_request_timeout": REQUEST_TIMEOUT}


def test_answers_are_cached_for_ten_seconds_like_the_api_servers_own_cache() -> None:
    clock = FakeClock()
    api = FakeAuthenticationApi({TOKEN: ALICE})
    auth = Authenticator(api, clock=clock)
    auth.authenticate(TOKEN)
    clock.now += 10.0
    auth.authenticate(TOKEN)
    assert len(api.bodies) == 1, "still cached at exactly ten seconds"
    clock.now += 0.001
    auth.authenticate(TOKEN)
    assert len(api.bodies) == 2


def test_authorization_answers_are_cached_for_ten_seconds_too() -> None:
    clock = FakeClock()
    api = FakeAuthorizationApi({(USER.name, "team-a")})
    authz = Authorizer(api, clock=clock)
    authz.may_create_pushreview(USER, "team-a")
    clock.now += 10.0
    authz.may_create_pushreview(USER, "team-a")
    assert len(api.bodies) == 1
    clock.now += 0.001
    authz.may_create_pushreview(USER, "team-a")
    assert len(api.bodies) == 2


def test_a_user_without_uid_or_groups_is_still_a_user() -> None:
    user = authenticator(FakeAuthenticationApi({TOKEN: {"username": "bob"}})).authenticate(TOKEN)
    assert user == User("bob", "", ())
    anonymous = authenticator(FakeAuthenticationApi({TOKEN: {}})).authenticate(TOKEN)
    assert anonymous == User("", "", ())


def test_users_differing_only_in_extra_are_asked_separately() -> None:
    api = FakeAuthorizationApi({(USER.name, "team-a")})
    authz = authorizer(api)
    first = User(USER.name, USER.uid, USER.groups, {"scope": ["a"]})
    second = User(USER.name, USER.uid, USER.groups, {"scope": ["b"]})
    authz.may_create_pushreview(first, "team-a")
    authz.may_create_pushreview(second, "team-a")
    authz.may_create_pushreview(User(USER.name, USER.uid, USER.groups, {"scope": ["a"]}), "team-a")
    assert [b["spec"]["extra"] for b in api.bodies] == [{"scope": ["a"]}, {"scope": ["b"]}]
