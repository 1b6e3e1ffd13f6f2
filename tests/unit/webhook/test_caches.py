"""The caches' answers the handlers rely on: a pull Secret's metadata by name."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from webhook.caches import PULL_SECRET_TYPES, NotSynced, WebhookCaches


class FakeInformer:
    def __init__(self, name: str, objects: dict[str, Any], synced: bool = True) -> None:
        self.name = name
        self.objects = objects
        self.synced = synced

    def has_synced(self) -> bool:
        return self.synced

    def get(self, key: str) -> Any:
        return self.objects.get(key)


def caches(*informers: FakeInformer) -> WebhookCaches:
    built = WebhookCaches(client.ApiClient())
    built.pull_secrets = list(informers)  # type: ignore[arg-type]
    return built


def test_both_kubelet_pull_secret_types_are_watched() -> None:
    built = WebhookCaches(client.ApiClient())
    assert PULL_SECRET_TYPES == ("kubernetes.io/dockerconfigjson", "kubernetes.io/dockercfg")
    assert [i.name for i in built.pull_secrets] == [f"secrets({t})" for t in PULL_SECRET_TYPES]
    assert all(i in built.informers for i in built.pull_secrets)


def test_a_pull_secret_of_either_type_is_found() -> None:
    legacy = {"metadata": {"name": "a-dockercfg"}}
    built = caches(FakeInformer("json", {}), FakeInformer("legacy", {"ns/a-dockercfg": legacy}))
    assert built.pull_secret("ns", "a-dockercfg") is legacy
    assert built.pull_secret("ns", "b-dockercfg") is None


def test_absence_before_the_first_list_is_not_an_answer() -> None:
    built = caches(FakeInformer("json", {}), FakeInformer("legacy", {}, synced=False))
    with pytest.raises(NotSynced, match="legacy"):
        built.pull_secret("ns", "a-dockercfg")
