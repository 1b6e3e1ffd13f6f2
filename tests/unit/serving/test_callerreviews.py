"""TokenReview/SubjectAccessReview callers and their TTL cache, with fake APIs and clocks."""

from __future__ import annotations

import contextlib
import copy
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubernetes.client.exceptions import ApiException
from prometheus_client import REGISTRY

from kube.ratelimit import KeyedRateLimiter
from localcluster.waiting import wait_for
from quota.objects import Obj
from serving.callerreviews import (
    FAILURE_TTL,
    REQUEST_TIMEOUT,
    REVOKED_TTL,
    SUCCESS_TTL,
    UNKNOWN_TOKEN_BURST,
    UNKNOWN_TOKEN_QPS,
    Authenticator,
    Authorizer,
    TooManyReviews,
    TtlCache,
    User,
)

TOKEN = "eyJhbGciOiJSUzI1NiJ9.secret-token-value.signature"
SOURCE = "10.0.0.7"


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


USER_ALICE = User(
    "system:serviceaccount:team-a:builder",
    "uid-alice",
    ("system:serviceaccounts", "system:serviceaccounts:team-a"),
    {"authentication.kubernetes.io/pod-name": ["p"]},
)


def authenticator(api: FakeAuthenticationApi) -> Authenticator:
    return Authenticator(api, ttl=10.0)


def test_a_valid_token_yields_the_user() -> None:
    api = FakeAuthenticationApi({TOKEN: ALICE})
    user = authenticator(api).authenticate(TOKEN, SOURCE)
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
    first = auth.authenticate(TOKEN, SOURCE)
    second = auth.authenticate(TOKEN, SOURCE)
    assert first is not None and first == second
    assert len(api.bodies) == 1


def test_the_cache_expires_and_a_revoked_token_stops_working() -> None:
    api = FakeAuthenticationApi({TOKEN: ALICE})
    clock = FakeClock()
    auth = Authenticator(api, ttl=10.0, clock=clock)
    assert auth.authenticate(TOKEN, SOURCE) is not None
    del api.users[TOKEN]
    clock.now += 5
    assert auth.authenticate(TOKEN, SOURCE) is not None, "within ttl the cached answer stands"
    clock.now += 6
    assert auth.authenticate(TOKEN, SOURCE) is None
    assert len(api.bodies) == 2


def test_a_rejected_token_is_none_and_cached_for_the_failure_ttl() -> None:
    api = FakeAuthenticationApi({})
    clock = FakeClock()
    auth = Authenticator(api, clock=clock)
    assert auth.authenticate("bad", SOURCE) is None
    clock.now += FAILURE_TTL
    assert auth.authenticate("bad", SOURCE) is None
    assert len(api.bodies) == 1, "a retried bad token is answered from the cache"
    api.users["bad"] = ALICE  # e.g. a token that became valid (just issued)
    clock.now += 0.001
    assert auth.authenticate("bad", SOURCE) is not None
    assert len(api.bodies) == 2


def test_failures_are_forgotten_sooner_than_successes() -> None:
    assert 0 < FAILURE_TTL < SUCCESS_TTL


@pytest.mark.parametrize(
    ("rejected", "valid"),
    [
        ("token-a", "token-b"),
        (TOKEN, TOKEN + "x"),
        (TOKEN, TOKEN[:-1]),
        (TOKEN[:-1] + "X", TOKEN),
    ],
)
def test_one_tokens_answer_never_serves_another(rejected: str, valid: str) -> None:
    api = FakeAuthenticationApi({valid: ALICE})
    auth = authenticator(api)
    for _ in range(2):
        assert auth.authenticate(rejected, SOURCE) is None
        assert auth.authenticate(valid, SOURCE) is not None
    assert [b["spec"]["token"] for b in api.bodies] == [rejected, valid]


def test_a_flood_of_rejected_tokens_never_evicts_a_valid_one() -> None:
    api = FakeAuthenticationApi({TOKEN: ALICE})
    plenty = KeyedRateLimiter(1.0, 100_000, max_keys=10)
    auth = Authenticator(api, limiter=plenty)
    assert auth.authenticate(TOKEN, SOURCE) is not None
    for n in range(auth._failures._max + 5):
        assert auth.authenticate(f"bogus-{n}", SOURCE) is None
    calls = len(api.bodies)
    assert auth.authenticate(TOKEN, SOURCE) is not None
    assert len(api.bodies) == calls, "the valid token is still cached"


def test_the_cache_key_never_contains_the_raw_token() -> None:
    api = FakeAuthenticationApi({TOKEN: ALICE, "short": ALICE})
    auth = authenticator(api)
    auth.authenticate(TOKEN, SOURCE)
    auth.authenticate("short", SOURCE)
    auth.authenticate("rejected-secret", SOURCE)
    keys = list(auth._cache._items) + list(auth._failures._items)
    assert len(keys) == 3
    for key in keys:
        assert TOKEN not in repr(key)
        assert "secret-token-value" not in repr(key)
        assert "short" not in repr(key)
        assert "rejected-secret" not in repr(key)


def test_distinct_tokens_are_reviewed_separately() -> None:
    bob = {**ALICE, "username": "bob", "uid": "uid-bob"}
    api = FakeAuthenticationApi({"t-alice": ALICE, "t-bob": bob})
    auth = authenticator(api)
    alice_user = auth.authenticate("t-alice", SOURCE)
    bob_user = auth.authenticate("t-bob", SOURCE)
    assert alice_user is not None and bob_user is not None
    assert (alice_user.name, bob_user.name) == (ALICE["username"], "bob")


# --- audiences -----------------------------------------------------------------------------

AUDIENCE = "image-registry-webhook.alauda.io"


class AudienceAwareApi(FakeAuthenticationApi):
    """Answers as kube-apiserver does: ``status.audiences`` are the requested audiences the
    token is valid for (its own audiences when none were requested)."""

    def __init__(self, users: dict[str, Obj], token_audiences: list[str] | None) -> None:
        super().__init__(users)
        self.token_audiences = token_audiences

    def create_token_review(self, body: Obj, **kwargs: Any) -> Raw:
        answer = json.loads(super().create_token_review(body, **kwargs).data)
        if self.token_audiences is not None:
            answer["status"]["audiences"] = self.token_audiences
        return Raw(json.dumps(answer).encode())


def test_the_configured_audiences_are_sent_and_must_come_back() -> None:
    api = AudienceAwareApi({TOKEN: ALICE}, [AUDIENCE])
    auth = Authenticator(api, audiences=["other.example.com", AUDIENCE])
    assert auth.authenticate(TOKEN, SOURCE) is not None
    assert api.bodies[0]["spec"] == {"token": TOKEN, "audiences": ["other.example.com", AUDIENCE]}


@pytest.mark.parametrize(
    "answered",
    [["https://kubernetes.default.svc"], [], None],
    ids=["another audience", "empty list", "no audiences field"],
)
def test_an_answer_for_other_audiences_is_a_rejection(answered: list[str] | None) -> None:
    """Authenticated, but not for us: an API server that ignored ``spec.audiences`` (or a
    token minted for the API server) must not pass."""
    api = AudienceAwareApi({TOKEN: ALICE}, answered)
    auth = Authenticator(api, audiences=[AUDIENCE])
    assert auth.authenticate(TOKEN, SOURCE) is None
    assert auth.authenticate(TOKEN, SOURCE) is None
    assert len(api.bodies) == 1, "cached as a failure"


def test_without_configured_audiences_none_are_sent_and_the_api_servers_apply() -> None:
    api = AudienceAwareApi({TOKEN: ALICE}, ["https://kubernetes.default.svc"])
    assert Authenticator(api).authenticate(TOKEN, SOURCE) is not None
    assert "audiences" not in api.bodies[0]["spec"]


# --- unknown tokens are rate-limited per source ------------------------------------------


def reviews_made(result: str) -> float:
    return (
        REGISTRY.get_sample_value("registry_v2_policy_token_reviews_total", {"result": result})
        or 0.0
    )


def test_a_source_gets_a_burst_of_reviews_then_429_until_its_bucket_refills() -> None:
    api = FakeAuthenticationApi({})
    clock = FakeClock()
    auth = Authenticator(api, clock=clock)
    for n in range(UNKNOWN_TOKEN_BURST):
        assert auth.authenticate(f"bogus-{n}", SOURCE) is None
    for n in range(100):
        with pytest.raises(TooManyReviews) as refused:
            auth.authenticate(f"more-{n}", SOURCE)
        assert refused.value.retry_after == pytest.approx(1 / UNKNOWN_TOKEN_QPS)
    assert len(api.bodies) == UNKNOWN_TOKEN_BURST
    clock.now += 1 / UNKNOWN_TOKEN_QPS
    assert auth.authenticate("later", SOURCE) is None
    assert len(api.bodies) == UNKNOWN_TOKEN_BURST + 1


def test_the_limit_is_per_source() -> None:
    api = FakeAuthenticationApi({TOKEN: ALICE})
    auth = Authenticator(api, clock=FakeClock())
    for n in range(UNKNOWN_TOKEN_BURST):
        auth.authenticate(f"bogus-{n}", "10.6.6.6")
    with pytest.raises(TooManyReviews):
        auth.authenticate(TOKEN, "10.6.6.6")
    assert auth.authenticate(TOKEN, SOURCE) is not None, "another address is not throttled"


def test_known_tokens_cost_no_token_of_the_bucket() -> None:
    api = FakeAuthenticationApi({TOKEN: ALICE})
    auth = Authenticator(api, clock=FakeClock())
    assert auth.authenticate(TOKEN, SOURCE) is not None
    assert auth.authenticate("bad", SOURCE) is None
    for n in range(UNKNOWN_TOKEN_BURST - 1):
        auth.authenticate(f"bogus-{n}", SOURCE)
    for _ in range(50):
        assert auth.authenticate(TOKEN, SOURCE) is not None, "cached: no review, no 429"
        assert auth.authenticate("bad", SOURCE) is None, "cached failure: no review, no 429"
    with pytest.raises(TooManyReviews):
        auth.authenticate("unknown", SOURCE)
    assert len(api.bodies) == 1 + UNKNOWN_TOKEN_BURST


def test_valid_new_tokens_never_run_an_address_out_of_reviews() -> None:
    """Only rejections count: a registry's replicas behind one address, or a test suite
    minting a token per case, are never throttled."""
    users = {f"valid-{n}": {**ALICE, "uid": f"uid-{n}"} for n in range(10 * UNKNOWN_TOKEN_BURST)}
    api = FakeAuthenticationApi(users)
    auth = Authenticator(api, clock=FakeClock())
    for token in users:
        assert auth.authenticate(token, SOURCE) is not None
    assert len(api.bodies) == len(users)


class Minted:
    """Stands in for ``IssuerKeys.signed``: the tokens the API server signed, and how
    often it was asked."""

    def __init__(self, *tokens: str) -> None:
        self.tokens = set(tokens)
        self.asked: list[str] = []

    def __call__(self, token: str) -> bool:
        self.asked.append(token)
        return token in self.tokens


def test_a_token_the_issuer_signed_is_reviewed_when_its_address_is_out_of_reviews() -> None:
    """Issue 17 item 5: made-up tokens from one address (an ingress, a NAT) must not lock
    out a valid token from that address."""
    fresh = [f"minted-{n}" for n in range(3)]
    api = FakeAuthenticationApi({token: ALICE for token in fresh})
    auth = Authenticator(api, clock=FakeClock(), signed=Minted(*fresh))
    for n in range(4 * UNKNOWN_TOKEN_BURST):
        with contextlib.suppress(TooManyReviews):
            auth.authenticate(f"made-up-{n}", SOURCE)
    for token in fresh:
        assert auth.authenticate(token, SOURCE) == USER_ALICE


def test_tokens_the_issuer_did_not_sign_still_get_429_after_the_burst() -> None:
    api = FakeAuthenticationApi({})
    auth = Authenticator(api, clock=FakeClock(), signed=Minted("minted"))
    for n in range(UNKNOWN_TOKEN_BURST):
        assert auth.authenticate(f"made-up-{n}", SOURCE) is None
    assert auth.authenticate("minted", SOURCE) is None, "signed, then rejected: reviewed"
    for n in range(20):
        with pytest.raises(TooManyReviews):
            auth.authenticate(f"more-{n}", SOURCE)
    assert len(api.bodies) == UNKNOWN_TOKEN_BURST + 1


def test_a_revoked_signed_token_is_refused_and_remembered_longer_than_other_failures() -> None:
    """Review H3: TokenReview stays the authority, so a signed token that is revoked (its
    Secret deleted) is refused; it never comes back, so it is not re-reviewed every
    ``FAILURE_TTL`` (K such tokens cost K/2 reviews a second, skipping every bucket)."""
    api = FakeAuthenticationApi({})
    clock = FakeClock()
    auth = Authenticator(api, clock=clock, signed=Minted("revoked"))
    assert auth.authenticate("revoked", SOURCE) is None
    clock.now += FAILURE_TTL + 1
    assert auth.authenticate("revoked", SOURCE) is None
    assert len(api.bodies) == 1, "remembered past FAILURE_TTL"
    clock.now += REVOKED_TTL
    assert auth.authenticate("revoked", SOURCE) is None
    assert len(api.bodies) == 2, "reviewed again once REVOKED_TTL has passed"


def test_revoked_signed_tokens_charge_their_addresses_bucket() -> None:
    """Review H3: a revoked token skipped the address's limit entirely; each one's
    rejection now counts like a made-up token's, so the address runs out of reviews."""
    revoked = [f"revoked-{n}" for n in range(UNKNOWN_TOKEN_BURST)]
    api = FakeAuthenticationApi({TOKEN: ALICE})
    auth = Authenticator(api, clock=FakeClock(), signed=Minted(TOKEN, *revoked))
    for token in revoked:
        assert auth.authenticate(token, SOURCE) is None
    with pytest.raises(TooManyReviews):
        auth.authenticate("made-up", SOURCE)
    assert len(api.bodies) == UNKNOWN_TOKEN_BURST
    assert auth.authenticate(TOKEN, SOURCE) == USER_ALICE, "item 5 stays fixed: never a 429"


def test_a_flood_of_made_up_failures_never_evicts_a_revoked_one() -> None:
    api = FakeAuthenticationApi({})
    clock = FakeClock()
    auth = Authenticator(api, clock=clock, signed=Minted("revoked"))
    assert auth.authenticate("revoked", SOURCE) is None
    for n in range(10_001):
        with contextlib.suppress(TooManyReviews):
            auth.authenticate(f"made-up-{n}", f"10.1.{n // 256}.{n % 256}")
    reviews = len(api.bodies)
    assert auth.authenticate("revoked", SOURCE) is None
    assert len(api.bodies) == reviews


def test_the_signature_is_checked_only_for_tokens_to_be_reviewed() -> None:
    minted = Minted(TOKEN)
    auth = Authenticator(FakeAuthenticationApi({TOKEN: ALICE}), clock=FakeClock(), signed=minted)
    for _ in range(5):
        assert auth.authenticate(TOKEN, SOURCE) == USER_ALICE
        assert auth.authenticate("bad", SOURCE) is None
    assert minted.asked == [TOKEN, "bad"], "cached answers need no check"


def test_an_api_server_failure_on_a_signed_token_is_an_error_not_a_429() -> None:
    """An address out of reviews still has a signed token reviewed; when the API server
    fails that review, the caller sees the failure (a 503), and nothing is cached."""

    class Failing(FakeAuthenticationApi):
        failing = False

        def create_token_review(self, body: Obj, **kwargs: Any) -> Raw:
            if self.failing:
                self.bodies.append(body)
                raise ConnectionError("api server down")
            return super().create_token_review(body, **kwargs)

    api = Failing({})
    auth = Authenticator(api, clock=FakeClock(), signed=Minted(TOKEN))
    for n in range(UNKNOWN_TOKEN_BURST):
        auth.authenticate(f"made-up-{n}", SOURCE)
    api.failing = True
    for _ in range(3):
        with pytest.raises(ConnectionError):
            auth.authenticate(TOKEN, SOURCE)
    assert len(api.bodies) == UNKNOWN_TOKEN_BURST + 3


def test_a_review_the_api_server_failed_costs_the_address_nothing() -> None:
    class Failing(FakeAuthenticationApi):
        def create_token_review(self, body: Obj, **kwargs: Any) -> Raw:
            self.bodies.append(body)
            raise ConnectionError("api server down")

    api = Failing({})
    auth = Authenticator(api, clock=FakeClock())
    for n in range(3 * UNKNOWN_TOKEN_BURST):
        with pytest.raises(ConnectionError):
            auth.authenticate(f"token-{n}", SOURCE)
    assert len(api.bodies) == 3 * UNKNOWN_TOKEN_BURST


def test_every_review_made_is_counted_by_result() -> None:
    api = FakeAuthenticationApi({TOKEN: ALICE})
    auth = Authenticator(api, clock=FakeClock())
    before = reviews_made("authenticated"), reviews_made("rejected")
    auth.authenticate(TOKEN, SOURCE)
    auth.authenticate(TOKEN, SOURCE)
    auth.authenticate("bad-1", SOURCE)
    auth.authenticate("bad-2", SOURCE)
    auth.authenticate("bad-2", SOURCE)
    assert (reviews_made("authenticated"), reviews_made("rejected")) == (
        before[0] + 1,
        before[1] + 2,
    )


def test_a_review_that_fails_is_counted_and_raised_and_caches_nothing() -> None:
    class Broken(FakeAuthenticationApi):
        def create_token_review(self, body: Obj, **kwargs: Any) -> Raw:
            self.bodies.append(body)
            raise ApiException(status=500)

    api = Broken({})
    auth = Authenticator(api, clock=FakeClock())
    before = reviews_made("error")
    for _ in range(2):
        with pytest.raises(ApiException):
            auth.authenticate(TOKEN, SOURCE)
    assert reviews_made("error") == before + 2
    assert len(api.bodies) == 2


THREAD_DEADLINE = 10.0
"""For threads to reach a point or finish: milliseconds, seconds on 2 busy cores."""


def test_concurrent_requests_with_one_new_token_share_one_review() -> None:
    """When the registry's cached token expires, its concurrent pushes all hold an unknown
    token: they must wait for one review, not each spend a token of the address's bucket
    (more pushes than the burst would otherwise get 429)."""
    release = threading.Event()

    class Slow(FakeAuthenticationApi):
        def create_token_review(self, body: Obj, **kwargs: Any) -> Raw:
            release.wait(THREAD_DEADLINE)
            return super().create_token_review(body, **kwargs)

    api = Slow({TOKEN: ALICE})
    auth = Authenticator(api)
    callers = UNKNOWN_TOKEN_BURST * 2
    results: list[User | Exception | None] = []

    def call() -> None:
        try:
            results.append(auth.authenticate(TOKEN, SOURCE))
        except Exception as err:
            results.append(err)

    threads = [threading.Thread(target=call, daemon=True) for _ in range(callers)]
    for thread in threads:
        thread.start()
    wait_for(
        lambda: auth.waiting_for_reviews() == callers - 1,
        timeout=THREAD_DEADLINE,
        what="all but one caller to wait for the review in flight",
    )
    release.set()
    deadline = time.monotonic() + THREAD_DEADLINE
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert len(api.bodies) == 1
    assert results == [USER_ALICE] * callers


def test_when_the_review_in_flight_fails_a_waiting_caller_tries_itself() -> None:
    release = threading.Event()
    attempts: list[int] = []

    class FailsOnce(FakeAuthenticationApi):
        def create_token_review(self, body: Obj, **kwargs: Any) -> Raw:
            attempts.append(1)
            if len(attempts) == 1:
                release.wait(THREAD_DEADLINE)
                raise ApiException(status=500)
            return super().create_token_review(body, **kwargs)

    auth = Authenticator(FailsOnce({TOKEN: ALICE}))
    outcomes: list[object] = []

    def call() -> None:
        try:
            outcomes.append(auth.authenticate(TOKEN, SOURCE))
        except ApiException as err:
            outcomes.append(err.status)

    first = threading.Thread(target=call, daemon=True)
    first.start()
    wait_for(lambda: attempts, timeout=THREAD_DEADLINE, what="the first review to start")
    second = threading.Thread(target=call, daemon=True)
    second.start()
    wait_for(
        lambda: auth.waiting_for_reviews() == 1,
        timeout=THREAD_DEADLINE,
        what="the second caller to wait",
    )
    release.set()
    first.join(THREAD_DEADLINE)
    second.join(THREAD_DEADLINE)
    assert sorted(outcomes, key=str) == sorted([500, USER_ALICE], key=str)
    assert auth.waiting_for_reviews() == 0


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


@pytest.mark.parametrize(
    ("other", "namespace"),
    [
        (User("someone-else", USER.uid, USER.groups, USER.extra), "team-a"),
        (User(USER.name, "uid-of-a-recreated-sa", USER.groups, USER.extra), "team-a"),
        (User(USER.name, USER.uid, ("system:authenticated",), USER.extra), "team-a"),
        (User(USER.name, USER.uid, USER.groups, {"k": ["other"]}), "team-a"),
        (User(USER.name, USER.uid, USER.groups, {}), "team-a"),
        (USER, "team-b"),
    ],
    ids=["name", "uid", "groups", "extra value", "no extra", "namespace"],
)
def test_a_decision_is_never_reused_for_a_caller_differing_in_anything(
    other: User, namespace: str
) -> None:
    """The cache key is the whole user info plus the namespace: a granted caller's answer
    must not leak to one that differs in a single field."""
    api = FakeAuthorizationApi({(USER.name, "team-a")})
    authz = authorizer(api)
    assert authz.may_create_pushreview(USER, "team-a") is True
    api.allowed.clear()  # the API server would now say no to anyone
    assert authz.may_create_pushreview(other, namespace) is False
    assert len(api.bodies) == 2
    assert authz.may_create_pushreview(USER, "team-a") is True, "the same caller: cached"


def test_a_missing_status_is_a_denial() -> None:
    class NoStatus(FakeAuthorizationApi):
        def create_subject_access_review(self, body: Obj, **kwargs: Any) -> Raw:
            self.bodies.append(body)
            return Raw(b"{}")

    assert authorizer(NoStatus(set())).may_create_pushreview(USER, "team-a") is False


# --- defaults and call arguments ---------------------------------------------------------


def test_reviews_are_raw_and_bounded_by_the_request_timeout() -> None:
    authentication = FakeAuthenticationApi({TOKEN: ALICE})
    Authenticator(authentication).authenticate(TOKEN, SOURCE)
    authorization = FakeAuthorizationApi({(USER.name, "team-a")})
    Authorizer(authorization).may_create_pushreview(USER, "team-a")
    for kwargs in (authentication.kwargs[0], authorization.kwargs[0]):
        assert kwargs == {"_preload_content": False, "_request_timeout": REQUEST_TIMEOUT}


def test_answers_are_cached_for_ten_seconds_like_the_api_servers_own_cache() -> None:
    clock = FakeClock()
    api = FakeAuthenticationApi({TOKEN: ALICE})
    auth = Authenticator(api, clock=clock)
    auth.authenticate(TOKEN, SOURCE)
    clock.now += 10.0
    auth.authenticate(TOKEN, SOURCE)
    assert len(api.bodies) == 1, "still cached at exactly ten seconds"
    clock.now += 0.001
    auth.authenticate(TOKEN, SOURCE)
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
    user = authenticator(FakeAuthenticationApi({TOKEN: {"username": "bob"}})).authenticate(
        TOKEN, SOURCE
    )
    assert user == User("bob", "", ())
    anonymous = authenticator(FakeAuthenticationApi({TOKEN: {}})).authenticate(TOKEN, SOURCE)
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


def test_a_subresource_is_asked_for_by_name() -> None:
    """``imagestreams/layers`` is another permission than ``imagestreams``: RBAC must be
    asked for the subresource, never for the resource alone."""
    api = FakeAuthorizationApi({(USER.name, "team-a")})
    assert authorizer(api).may(USER, "team-a", "get", "imagestreams", "layers") is True
    assert api.bodies[0]["spec"]["resourceAttributes"] == {
        "namespace": "team-a",
        "verb": "get",
        "group": "image.alauda.io",
        "resource": "imagestreams",
        "subresource": "layers",
    }
