"""What the pull-secret wiring exports about the tokens it manages, and what it caches."""

from __future__ import annotations

import copy
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from prometheus_client import REGISTRY

from controller.metrics import MANAGED_TOKEN_EXPIRY
from controller.pullsecrets.reconciler import PullSecretConfig
from controller.pullsecrets.wiring import PullSecretWiring, token_expiry_reader
from kube.ratelimit import RateLimiter
from quota.objects import Obj
from quota.pullsecrets.desired_secret import (
    SigningKeyId,
    TokenGrant,
    build_desired_secret,
    read_secret_config,
    secret_is_current,
)
from quota.pullsecrets.names import DEFAULT_INTERNAL_HOSTNAMES, OPT_OUT_KEY
from quota.pullsecrets.refresh import token_time_annotations

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Secrets:
    def __init__(self, *expiries: datetime) -> None:
        self.items: list[Obj] = [
            {"metadata": {"annotations": token_time_annotations(e - timedelta(hours=1), e)}}
            for e in expiries
        ]

    def list(self, namespace: str | None = None) -> list[Obj]:
        return self.items


def test_the_gauge_reads_the_earliest_expiry_of_the_cache_at_each_scrape() -> None:
    secrets = Secrets(T0 + timedelta(minutes=40), T0 + timedelta(minutes=10))
    MANAGED_TOKEN_EXPIRY.set_function(token_expiry_reader(secrets))
    name = "registry_v2_policy_managed_token_earliest_expiry_timestamp_seconds"
    assert REGISTRY.get_sample_value(name) == (T0 + timedelta(minutes=10)).timestamp()
    secrets.items = secrets.items[:1]  # the early one was refreshed away
    assert REGISTRY.get_sample_value(name) == (T0 + timedelta(minutes=40)).timestamp()


def test_without_managed_tokens_the_earliest_expiry_is_never() -> None:
    assert token_expiry_reader(Secrets())() == math.inf


NAMESPACE = "image-registry-system"
CONFIG = PullSecretConfig(
    internal_hostnames=DEFAULT_INTERNAL_HOSTNAMES,
    extra_hostnames=(),
    excluded_namespaces=frozenset({NAMESPACE, "kube-system"}),
    token_lifetime_seconds=3600,
)


class NoEvents:
    def record(self, *args: Any, **kwargs: Any) -> None: ...


def test_cached_objects_lose_their_managed_fields_and_keep_what_is_written_back() -> None:
    """ServiceAccounts and Secrets are patched and replaced from the cache, so only
    managedFields go; namespaces keep their labels and whether they are being deleted."""
    wiring = PullSecretWiring(client.ApiClient(), CONFIG, NAMESPACE, RateLimiter(1, 1), NoEvents())
    meta = {
        "name": "n",
        "namespace": "a",
        "uid": "u",
        "resourceVersion": "9",
        "labels": {OPT_OUT_KEY: "false"},
        "annotations": {"a": "b"},
        "deletionTimestamp": "2026-01-01T00:00:00Z",
        "managedFields": [{"manager": "kubectl", "fieldsV1": {}}],
    }
    obj = {"metadata": meta, "imagePullSecrets": [{"name": "x"}], "data": {"k": "dg=="}}
    stripped = {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    for informer in (wiring.serviceaccounts, wiring.configs):
        assert informer.transform(obj) == stripped
    namespace = wiring.namespaces.transform(obj)
    assert namespace == {
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "resourceVersion", "labels", "deletionTimestamp")
        }
    }


SA = {"metadata": {"name": "builder", "namespace": "team", "uid": "sa-uid"}}
HOSTS = ["registry.svc:5000", "registry.example"]
TOKEN = "eyJhbGciOiJSUzI1NiJ9." + "t" * 900


def managed_secret(hostnames: list[str], data: Any = None) -> Obj:
    grant = TokenGrant(token=TOKEN, issued=T0, expires=T0 + timedelta(hours=1))
    secret = build_desired_secret(SA, hostnames, grant)
    secret["metadata"].update(uid="s-uid", resourceVersion="4", managedFields=[{"m": 1}])
    if data is not None:
        secret["data"] = data
    return secret


@pytest.mark.parametrize(
    ("secret", "hostnames", "now"),
    [
        (managed_secret(HOSTS), HOSTS, T0),  # current
        (managed_secret(HOSTS), [*HOSTS, "new.example"], T0),  # a route was added
        (managed_secret(HOSTS), HOSTS, T0 + timedelta(minutes=40)),  # 60 % of its lifetime
        (managed_secret(HOSTS, data={".dockerconfigjson": "not base64!"}), HOSTS, T0),
        (managed_secret(HOSTS, data={}), HOSTS, T0),
        (managed_secret(HOSTS, data="junk"), HOSTS, T0),
    ],
)
def test_a_cached_secret_holds_no_token_and_is_judged_as_the_original(
    secret: Obj, hostnames: list[str], now: datetime
) -> None:
    wiring = PullSecretWiring(client.ApiClient(), CONFIG, NAMESPACE, RateLimiter(1, 1), NoEvents())
    cached = wiring.secrets.transform(copy.deepcopy(secret))
    assert TOKEN not in json.dumps(cached)
    config = read_secret_config(cached)
    assert config is None or config.token != TOKEN
    assert "managedFields" not in cached["metadata"]
    assert cached["metadata"] == {
        k: v for k, v in secret["metadata"].items() if k != "managedFields"
    }
    assert secret_is_current(cached, SA, hostnames, now) == secret_is_current(
        secret, SA, hostnames, now
    )


class ProbeApi:
    def __init__(self, tokens: list[str | Exception]) -> None:
        self.tokens = tokens
        self.asked: list[tuple[str, str, int, tuple[str, ...]]] = []

    def probe_token(
        self, namespace: str, sa_name: str, lifetime_seconds: int, audiences: tuple[str, ...]
    ) -> str:
        self.asked.append((namespace, sa_name, lifetime_seconds, audiences))
        token = self.tokens.pop(0)
        if isinstance(token, Exception):
            raise token
        return token


def test_a_probe_that_sees_a_new_signing_key_requeues_every_serviceaccount(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wiring = PullSecretWiring(
        client.ApiClient(), CONFIG, NAMESPACE, RateLimiter(1, 1), NoEvents(), now=lambda: T0
    )
    requeued: list[str | None] = []
    monkeypatch.setattr(wiring, "_enqueue_all", requeued.append)
    probe = ProbeApi(
        [
            jwt.encode({}, "k" * 32, headers={"kid": "key-1"}),
            jwt.encode({}, "k" * 32, headers={"kid": "key-1"}),
            ApiException(status=503),  # a failed probe changes nothing
            jwt.encode({}, "k" * 32, headers={"kid": "key-2"}),
        ]
    )
    monkeypatch.setattr(wiring, "_api", probe)
    for _ in range(4):
        wiring.probe_signing_key()
    assert wiring.signing_key.current() == SigningKeyId("key-2", T0)
    assert requeued == [None, None]  # learnt, then rotated: all namespaces each time
    # A short-lived token of the service's own namespace's default ServiceAccount.
    assert probe.asked[0] == (
        "image-registry-system",
        "default",
        600,
        ("image-registry.alauda.io",),
    )
