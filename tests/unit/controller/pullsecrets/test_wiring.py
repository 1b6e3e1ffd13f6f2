"""What the pull-secret wiring exports about the tokens it manages, and what it caches."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client
from prometheus_client import REGISTRY

from controller.metrics import MANAGED_TOKEN_EXPIRY
from controller.pullsecrets.wiring import PullSecretWiring, token_expiry_reader
from kube.ratelimit import RateLimiter
from kube.settings import Settings
from quota.objects import Obj
from quota.pullsecrets.names import OPT_OUT_KEY
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


class NoEvents:
    def record(self, *args: Any, **kwargs: Any) -> None: ...


def test_cached_objects_lose_their_managed_fields_and_keep_what_is_written_back() -> None:
    """ServiceAccounts and Secrets are patched and replaced from the cache, so only
    managedFields go; namespaces keep their labels and whether they are being deleted."""
    wiring = PullSecretWiring(client.ApiClient(), Settings(), RateLimiter(1, 1), NoEvents())
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
    for informer in (wiring.serviceaccounts, wiring.secrets, wiring.configs):
        assert informer.transform(obj) == stripped
    namespace = wiring.namespaces.transform(obj)
    assert namespace == {
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "resourceVersion", "labels", "deletionTimestamp")
        }
    }
