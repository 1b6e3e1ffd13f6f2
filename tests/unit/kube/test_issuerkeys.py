"""Which tokens the issuer signed, with keys made here (cryptography) and a fake API server
serving them as kube-apiserver does (discovery document and JWKS)."""

from __future__ import annotations

import base64
import json
import threading
import types
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st
from kubernetes import client

from kube.issuerkeys import (
    DISCOVERY_PATH,
    FETCH_TIMEOUT,
    JWKS_PATH,
    LEEWAY_SECONDS,
    REFRESH_BURST,
    REFRESH_QPS,
    REFRESH_SECONDS,
    IssuerKeys,
    KeySet,
    Verdict,
    api_fetcher,
    judge,
    parse_key_set,
)
from kube.ratelimit import RateLimiter

ISSUER = "https://kubernetes.default.svc.cluster.local"
AUDIENCE = "image-registry.alauda.io"
NOW = 1_800_000_000.0
"""Wall-clock seconds at which the tests judge (tokens are minted around it)."""
THREAD_DEADLINE = 10.0
"""For threads to reach a point or finish: milliseconds, seconds on 2 busy cores."""

KID = {"kid": "rsa"}
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def public_jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
    """The public JWK kube-apiserver publishes for a signing key."""
    algorithm = jwt.get_algorithm_by_name(alg)
    data: dict[str, Any] = json.loads(algorithm.to_jwk(key.public_key()))
    return {**data, "kid": kid, "alg": alg, "use": "sig"}


def mint(
    key: Any = RSA_KEY,
    *,
    kid: str | None = "rsa",
    alg: str = "RS256",
    iss: str = ISSUER,
    aud: list[str] | str | None = None,
    exp: float | None = NOW + 3600,
    **claims: Any,
) -> str:
    """A service-account token as kube-apiserver mints it (``TokenRequest``)."""
    payload: dict[str, Any] = {
        "iss": iss,
        "aud": [AUDIENCE] if aud is None else aud,
        "sub": "system:serviceaccount:team-a:builder",
        "iat": int(NOW - 60),
        "nbf": int(NOW - 60),
        **claims,
    }
    if exp is not None:
        payload["exp"] = int(exp)
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(payload, key, algorithm=alg, headers=headers)


def key_set(*jwks: dict[str, Any], issuer: str = ISSUER) -> KeySet:
    return parse_key_set(
        json.dumps({"issuer": issuer}).encode(), json.dumps({"keys": list(jwks)}).encode(), 0.0
    )


KEYS = key_set(public_jwk(RSA_KEY, "rsa", "RS256"), public_jwk(EC_KEY, "ec", "ES256"))


# --- judge: the decision -----------------------------------------------------------------


def test_a_token_the_issuer_signed_for_the_audience_is_signed() -> None:
    assert judge(mint(), KEYS, [AUDIENCE], NOW) is Verdict.SIGNED


def test_an_ecdsa_signing_key_is_verified_too() -> None:
    token = mint(EC_KEY, kid="ec", alg="ES256")
    assert judge(token, KEYS, [AUDIENCE], NOW) is Verdict.SIGNED


def test_one_of_several_audiences_is_enough() -> None:
    token = mint(aud=["other", AUDIENCE])
    assert judge(token, KEYS, ["x", AUDIENCE], NOW) is Verdict.SIGNED


def test_without_audiences_the_api_servers_own_audience_the_issuer_is_wanted() -> None:
    assert judge(mint(aud=[ISSUER]), KEYS, [], NOW) is Verdict.SIGNED
    assert judge(mint(aud=[AUDIENCE]), KEYS, [], NOW) is Verdict.NOT_SIGNED


def test_a_token_without_key_id_is_tried_against_every_key() -> None:
    assert judge(mint(EC_KEY, kid=None, alg="ES256"), KEYS, [AUDIENCE], NOW) is Verdict.SIGNED


def test_a_key_id_the_set_lacks_asks_for_the_keys_again() -> None:
    assert judge(mint(kid="rotated"), KEYS, [AUDIENCE], NOW) is Verdict.UNKNOWN_KEY


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("made-up-token", id="not-a-jwt"),
        pytest.param("", id="empty"),
        pytest.param("a.b.c", id="three-garbage-parts"),
        pytest.param(mint(OTHER_RSA_KEY), id="forged-signature-with-a-known-key-id"),
        pytest.param(mint(OTHER_RSA_KEY, kid=None), id="forged-signature-without-key-id"),
        pytest.param(mint(aud=["another-audience"]), id="another-audience"),
        pytest.param(mint(aud=[]), id="no-audience"),
        pytest.param(mint(iss="https://evil.example"), id="another-issuer"),
        pytest.param(mint(iss="kubernetes/serviceaccount"), id="legacy-secret-token-issuer"),
        pytest.param(mint(exp=None), id="no-expiry"),
        pytest.param(mint(exp=NOW - LEEWAY_SECONDS - 1), id="expired-past-the-leeway"),
        pytest.param(mint(nbf=int(NOW + LEEWAY_SECONDS + 5)), id="not-yet-valid"),
        pytest.param(mint(iat=int(NOW + LEEWAY_SECONDS + 5)), id="issued-in-the-future"),
        pytest.param(mint(EC_KEY, kid="rsa", alg="ES256"), id="another-keys-signature-under-a-kid"),
        pytest.param(mint(kid="ec"), id="rsa-signature-under-the-ec-kid"),
        pytest.param(
            jwt.encode({"iss": ISSUER, "aud": [AUDIENCE], "exp": int(NOW + 60)}, "", "none"),
            id="alg-none",
        ),
        pytest.param(
            jwt.encode(
                {"iss": ISSUER, "aud": [AUDIENCE], "exp": int(NOW + 60)},
                "a-shared-secret-of-32-bytes-long!",
                "HS256",
                headers={"kid": "rsa"},
            ),
            id="hmac-under-a-public-kid",
        ),
        pytest.param(
            jwt.encode({"iss": ISSUER, "aud": [AUDIENCE], "exp": True}, RSA_KEY, "RS256", KID),
            id="boolean-exp",
        ),
        pytest.param(
            ".".join(
                part.rstrip("=")
                for part in (
                    base64.urlsafe_b64encode(b'{"alg":"RS256","kid":7}').decode(),
                    *mint().split(".")[1:],
                )
            ),
            id="numeric-key-id",
        ),
    ],
)
def test_tokens_that_could_be_made_up_are_not_signed(token: str) -> None:
    assert judge(token, KEYS, [AUDIENCE], NOW) is Verdict.NOT_SIGNED


def test_expiry_is_read_with_the_api_servers_leeway() -> None:
    """kube-apiserver still accepts a token a minute past ``exp``: so do we."""
    token = mint(exp=NOW - LEEWAY_SECONDS + 1)
    assert judge(token, KEYS, [AUDIENCE], NOW) is Verdict.SIGNED
    assert judge(token, KEYS, [AUDIENCE], NOW + 2) is Verdict.NOT_SIGNED


@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_no_text_makes_the_judge_raise(token: str) -> None:
    assert judge(token, KEYS, [AUDIENCE], NOW) in Verdict


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@given(
    header=st.dictionaries(st.sampled_from(["alg", "kid", "typ", "crit", "b64"]), JSON),
    kid=st.sampled_from(["rsa", "ec", None]),
    payload=JSON,
    signature=st.binary(max_size=300),
)
def test_no_jwt_shaped_forgery_makes_the_judge_raise(
    header: dict[str, Any], kid: str | None, payload: Any, signature: bytes
) -> None:
    """Any header and payload, any signature bytes: a verdict, never a crash (a 500)."""
    if kid is not None:
        header = {**header, "kid": kid}
    token = ".".join(
        (b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature))
    )
    assert judge(token, KEYS, [AUDIENCE], NOW) in Verdict


@given(
    header=st.dictionaries(st.text(max_size=8), st.none() | st.integers() | st.text(max_size=8)),
    claims=st.dictionaries(
        st.sampled_from(["iss", "aud", "exp", "nbf", "iat", "sub"]),
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats()
        | st.text(max_size=8)
        | st.lists(st.text(max_size=8), max_size=3),
    ),
)
def test_no_claims_signed_by_the_issuer_make_the_judge_raise(
    header: dict[str, Any], claims: dict[str, Any]
) -> None:
    """Even the issuer's own signature over odd claims is judged, never a crash (signed
    at the JWS layer: PyJWT's own ``encode`` refuses to write such claims)."""
    headers = {k: v for k, v in header.items() if k not in ("alg", "kid")} | {"kid": "rsa"}
    token = jwt.api_jws.encode(json.dumps(claims).encode(), RSA_KEY, "RS256", headers)
    assert judge(token, KEYS, [AUDIENCE], NOW) in Verdict


@pytest.mark.parametrize(
    ("discovery", "jwks"),
    [
        (b"not json", json.dumps({"keys": [public_jwk(RSA_KEY, "rsa", "RS256")]}).encode()),
        (b"[]", json.dumps({"keys": [public_jwk(RSA_KEY, "rsa", "RS256")]}).encode()),
        (b'{"issuer": ""}', json.dumps({"keys": [public_jwk(RSA_KEY, "rsa", "RS256")]}).encode()),
        (json.dumps({"issuer": ISSUER}).encode(), b"not json"),
        (json.dumps({"issuer": ISSUER}).encode(), b'{"keys": []}'),
        (json.dumps({"issuer": ISSUER}).encode(), b'{"keys": [{"kty": "nonsense"}]}'),
    ],
)
def test_an_unusable_discovery_or_key_set_is_a_value_error(discovery: bytes, jwks: bytes) -> None:
    with pytest.raises(ValueError):
        parse_key_set(discovery, jwks, 0.0)


def test_keys_of_an_unknown_type_are_skipped_beside_usable_ones() -> None:
    keys = key_set(public_jwk(RSA_KEY, "rsa", "RS256"), {"kty": "nonsense", "kid": "x"})
    assert set(keys.keys) == {"rsa"}


# --- IssuerKeys: fetching, caching, bounded refetch --------------------------------------


class FakeApiServer:
    """Serves the discovery document and the JWKS of ``keys`` (kid -> JWK), counting GETs."""

    def __init__(self, *jwks: dict[str, Any]) -> None:
        self.jwks = list(jwks)
        self.gets: list[str] = []
        self.failing = False

    def fetch(self, path: str) -> bytes:
        self.gets.append(path)
        if self.failing:
            raise ConnectionError("api server down")
        if path == DISCOVERY_PATH:
            return json.dumps({"issuer": ISSUER, "jwks_uri": ISSUER + JWKS_PATH}).encode()
        assert path == JWKS_PATH
        return json.dumps({"keys": self.jwks}).encode()

    @property
    def key_fetches(self) -> int:
        return self.gets.count(JWKS_PATH)


class Clocks:
    def __init__(self) -> None:
        self.monotonic = 100.0
        self.wall = NOW

    def advance(self, seconds: float) -> None:
        self.monotonic += seconds
        self.wall += seconds


def issuer_keys(server: FakeApiServer, clocks: Clocks) -> IssuerKeys:
    clock: Callable[[], float] = lambda: clocks.monotonic  # noqa: E731
    return IssuerKeys(server.fetch, [AUDIENCE], clock=clock, wall=lambda: clocks.wall)


def test_the_keys_are_fetched_on_first_use_then_kept() -> None:
    server = FakeApiServer(public_jwk(RSA_KEY, "rsa", "RS256"))
    keys = issuer_keys(server, Clocks())
    assert server.gets == [], "nothing is fetched before a token needs it"
    for _ in range(20):
        assert keys.signed(mint())
    assert server.gets == [DISCOVERY_PATH, JWKS_PATH]


def test_a_rotated_signing_key_is_fetched_when_a_token_names_it() -> None:
    server = FakeApiServer(public_jwk(RSA_KEY, "rsa", "RS256"))
    clocks = Clocks()
    keys = issuer_keys(server, clocks)
    assert keys.signed(mint())
    clocks.advance(1 / REFRESH_QPS)
    server.jwks.append(public_jwk(OTHER_RSA_KEY, "new", "RS256"))
    assert keys.signed(mint(OTHER_RSA_KEY, kid="new"))
    assert server.key_fetches == 2


def test_made_up_key_ids_fetch_at_most_the_refresh_rate() -> None:
    server = FakeApiServer(public_jwk(RSA_KEY, "rsa", "RS256"))
    clocks = Clocks()
    keys = issuer_keys(server, clocks)
    for n in range(100):
        assert not keys.signed(mint(OTHER_RSA_KEY, kid=f"forged-{n}"))
    assert server.key_fetches == REFRESH_BURST, "the first use, then nothing until a refill"
    clocks.advance(1 / REFRESH_QPS)
    for n in range(100):
        assert not keys.signed(mint(OTHER_RSA_KEY, kid=f"again-{n}"))
    assert server.key_fetches == REFRESH_BURST + 1
    assert keys.signed(mint()), "the known key still vouches meanwhile"


def test_tokens_that_fail_otherwise_never_cause_a_fetch() -> None:
    server = FakeApiServer(public_jwk(RSA_KEY, "rsa", "RS256"))
    clocks = Clocks()
    keys = issuer_keys(server, clocks)
    assert keys.signed(mint())
    clocks.advance(10 / REFRESH_QPS)
    for token in ("garbage", mint(OTHER_RSA_KEY), mint(aud=["x"]), mint(exp=NOW - 3600)):
        assert not keys.signed(token)
    assert server.key_fetches == 1


class Ticks:
    """A stop event for ``IssuerKeys.run`` whose waits return at once: ``ticks`` periods
    pass, then it is set. Records the periods waited."""

    def __init__(self, ticks: int, before_each: Callable[[int], None] = lambda n: None) -> None:
        self.ticks = ticks
        self.waited: list[float] = []
        self._before_each = before_each

    def wait(self, timeout: float) -> bool:
        self.waited.append(timeout)
        if len(self.waited) > self.ticks:
            return True
        self._before_each(len(self.waited))
        return False


def test_the_background_refresh_fetches_at_once_then_every_period() -> None:
    server = FakeApiServer(public_jwk(RSA_KEY, "rsa", "RS256"))
    keys = issuer_keys(server, Clocks())
    keys.run(Ticks(3))  # type: ignore[arg-type]
    assert server.key_fetches == 1 + 3
    assert keys.signed(mint())
    assert server.key_fetches == 4, "the keys were there before any token asked"


class SpentBudget(RateLimiter):
    """The on-demand budget as made-up key ids leave it: always just taken by a forgery."""

    def __init__(self) -> None:
        super().__init__(REFRESH_QPS, REFRESH_BURST)

    def try_acquire(self) -> bool:
        return False


def test_a_rotated_key_is_learnt_in_the_background_when_forgeries_spend_the_budget() -> None:
    """Review H3: request-driven fetches must not be the only way keys are learnt, or
    made-up key ids that win the budget keep a rotation's tokens unrecognised."""
    server = FakeApiServer(public_jwk(RSA_KEY, "rsa", "RS256"))
    keys = IssuerKeys(server.fetch, [AUDIENCE], wall=lambda: NOW, limiter=SpentBudget())
    stop = Ticks(0)
    keys.run(stop)  # type: ignore[arg-type]
    assert keys.signed(mint())
    server.jwks.append(public_jwk(OTHER_RSA_KEY, "new", "RS256"))  # kube-apiserver restarted
    assert not keys.signed(mint(OTHER_RSA_KEY, kid="new")), "no on-demand fetch is left"
    keys.run(Ticks(1))  # type: ignore[arg-type]
    assert keys.signed(mint(OTHER_RSA_KEY, kid="new"))
    assert stop.waited == [REFRESH_SECONDS]


def test_a_retired_key_vouches_no_more_after_the_background_refresh() -> None:
    server = FakeApiServer(public_jwk(RSA_KEY, "rsa", "RS256"))
    keys = issuer_keys(server, Clocks())
    assert keys.signed(mint())
    server.jwks = [public_jwk(OTHER_RSA_KEY, "new", "RS256")]  # the old key was retired
    keys.run(Ticks(0))  # type: ignore[arg-type]
    assert not keys.signed(mint())
    assert keys.signed(mint(OTHER_RSA_KEY, kid="new"))


def test_start_runs_the_refresh_on_a_daemon_thread() -> None:
    server = FakeApiServer(public_jwk(RSA_KEY, "rsa", "RS256"))
    fetched = threading.Event()
    fetch = server.fetch

    def fetch_and_tell(path: str) -> bytes:
        body = fetch(path)
        if path == JWKS_PATH:
            fetched.set()
        return body

    stop = threading.Event()
    keys = IssuerKeys(fetch_and_tell, [AUDIENCE], wall=lambda: NOW).start(stop)
    try:
        assert fetched.wait(THREAD_DEADLINE), "the first fetch happens without any token"
        assert keys.signed(mint())
    finally:
        stop.set()


def test_a_fetch_in_flight_holds_up_no_other_caller() -> None:
    """Review H3: the lock was held across both GETs (5 s each), so every caller with an
    unknown key id queued behind one slow fetch. One fetch runs; others judge with the keys
    we have, at once."""
    server = FakeApiServer(public_jwk(RSA_KEY, "rsa", "RS256"))
    clocks = Clocks()
    keys = issuer_keys(server, clocks)
    assert keys.signed(mint())
    server.jwks.append(public_jwk(OTHER_RSA_KEY, "new", "RS256"))
    clocks.advance(1 / REFRESH_QPS)
    entered, release = threading.Event(), threading.Event()
    fetch = server.fetch

    def slow_fetch(path: str) -> bytes:
        entered.set()
        assert release.wait(THREAD_DEADLINE)
        return fetch(path)

    keys._fetch = slow_fetch
    results: list[bool] = []
    fetching = threading.Thread(
        target=lambda: results.append(keys.signed(mint(OTHER_RSA_KEY, kid="new")))
    )
    fetching.start()
    try:
        assert entered.wait(THREAD_DEADLINE)
        others: list[bool] = []
        other = threading.Thread(
            target=lambda: others.extend(
                [keys.signed(mint(OTHER_RSA_KEY, kid="also-unknown")), keys.signed(mint())]
            )
        )
        other.start()
        other.join(THREAD_DEADLINE)
        assert not other.is_alive(), "a caller waited for another's fetch"
        assert others == [False, True], "judged with the keys we have"
    finally:
        release.set()
        fetching.join(THREAD_DEADLINE)
    assert results == [True]
    assert server.key_fetches == 2, "one fetch, not one per caller"


def test_without_keys_nothing_is_vouched_for_and_a_later_fetch_recovers() -> None:
    server = FakeApiServer(public_jwk(RSA_KEY, "rsa", "RS256"))
    server.failing = True
    clocks = Clocks()
    keys = issuer_keys(server, clocks)
    for _ in range(10):
        assert not keys.signed(mint()), "no keys: the caller rate-limits as before"
    assert len(server.gets) == REFRESH_BURST, "a failing API server is asked at the refresh rate"
    server.failing = False
    clocks.advance(1 / REFRESH_QPS)
    assert keys.signed(mint())


def test_a_failed_refetch_keeps_the_keys_we_had() -> None:
    server = FakeApiServer(public_jwk(RSA_KEY, "rsa", "RS256"))
    clocks = Clocks()
    keys = issuer_keys(server, clocks)
    assert keys.signed(mint())
    server.failing = True
    clocks.advance(1 / REFRESH_QPS)
    assert not keys.signed(mint(kid="unknown"))
    assert keys.signed(mint()), "the keys fetched before still vouch"


def test_the_issuer_comes_from_the_api_servers_discovery_document() -> None:
    server = FakeApiServer(public_jwk(RSA_KEY, "rsa", "RS256"))
    keys = IssuerKeys(server.fetch, [], clock=lambda: 0.0, wall=lambda: NOW)
    assert keys.signed(mint(aud=[ISSUER]))
    assert not keys.signed(mint(aud=[ISSUER], iss="https://other.example"))


# --- issue 17's mutation survivors -------------------------------------------------------


def test_an_unusable_key_set_says_why() -> None:
    """The reason is the warning an operator reads when the keys cannot be fetched."""
    jwks = json.dumps({"keys": [public_jwk(RSA_KEY, "rsa", "RS256")]}).encode()
    with pytest.raises(ValueError, match=r"^the discovery document names no issuer$"):
        parse_key_set(b'{"issuer": ""}', jwks, 0.0)
    with pytest.raises(ValueError, match=r"^unusable issuer discovery or key set: \S"):
        parse_key_set(b"not json", jwks, 0.0)


def test_expiry_is_judged_at_the_given_time_not_the_machines_clock() -> None:
    """A token whose ``exp`` is long past on the wall clock is still signed at a ``now``
    before it: time is ours to give, never PyJWT's reading of the clock."""
    token = mint(exp=2_000, iat=1_000, nbf=1_000)
    assert judge(token, KEYS, [AUDIENCE], 1_500) is Verdict.SIGNED


def test_the_leeway_is_inclusive_at_both_ends_of_a_lifetime() -> None:
    """go-jose refuses only ``now > exp + leeway`` and ``now < nbf - leeway``."""
    token = mint(exp=NOW, nbf=int(NOW + LEEWAY_SECONDS), iat=int(NOW + LEEWAY_SECONDS))
    assert judge(token, KEYS, [AUDIENCE], NOW) is Verdict.SIGNED
    assert judge(token, KEYS, [AUDIENCE], NOW + LEEWAY_SECONDS) is Verdict.SIGNED
    assert judge(token, KEYS, [AUDIENCE], NOW - 0.5) is Verdict.NOT_SIGNED


def test_an_expiry_written_as_a_string_is_not_a_lifetime() -> None:
    payload = {"iss": ISSUER, "aud": [AUDIENCE], "exp": str(int(NOW + 3600))}
    token = jwt.encode(payload, RSA_KEY, algorithm="RS256", headers=KID)
    assert judge(token, KEYS, [AUDIENCE], NOW) is Verdict.NOT_SIGNED


def test_a_failed_fetch_is_logged_with_its_cause(caplog: pytest.LogCaptureFixture) -> None:
    server = FakeApiServer(public_jwk(RSA_KEY, "rsa", "RS256"))
    server.failing = True
    with caplog.at_level("WARNING", logger="kube.issuerkeys"):
        assert issuer_keys(server, Clocks()).refresh() is None
    assert [r.getMessage() for r in caplog.records] == [
        "cannot fetch the service-account issuer's keys: api server down"
    ]


class FakeApiClient(client.ApiClient):  # type: ignore[misc]
    """Answers the typed client's calls with canned bodies, recording how it was asked."""

    def __init__(self) -> None:
        super().__init__(client.Configuration(host="http://api.invalid"))
        self.calls: list[tuple[str, Any, Any]] = []

    def call_api(self, resource_path: str, method: str, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((resource_path, kwargs["_preload_content"], kwargs["_request_timeout"]))
        body = b"jwks" if resource_path.endswith("jwks") else b"discovery"
        return types.SimpleNamespace(data=body)


def test_the_api_fetcher_reads_both_documents_raw_and_bounded_in_time() -> None:
    api = FakeApiClient()
    fetch = api_fetcher(api)
    assert fetch(DISCOVERY_PATH) == b"discovery"
    assert fetch(JWKS_PATH) == b"jwks"
    assert api.calls == [
        (DISCOVERY_PATH, False, FETCH_TIMEOUT),
        (JWKS_PATH, False, FETCH_TIMEOUT),
    ]
