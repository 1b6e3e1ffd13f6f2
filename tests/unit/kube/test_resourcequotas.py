"""ResourceQuotaClient: dicts in and out, every call raw (no model decoding) and bounded."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kube.resourcequotas import ResourceQuotaClient
from quota.objects import Obj

QUOTA: Obj = {
    "metadata": {"name": "q", "namespace": "team-a", "resourceVersion": "7"},
    "status": {"used": {"alauda.io/imagestreams": "2"}},
}


@dataclass
class Raw:
    data: bytes


class RecordingCore:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.fail_with: int | None = None

    def _record(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.calls.append((method, args, kwargs))
        if self.fail_with is not None:
            raise ApiException(status=self.fail_with)

    def list_namespaced_resource_quota(self, *args: Any, **kwargs: Any) -> Raw:
        self._record("list", args, kwargs)
        return Raw(json.dumps({"kind": "ResourceQuotaList", "items": [QUOTA]}).encode())

    def read_namespaced_resource_quota(self, *args: Any, **kwargs: Any) -> Raw:
        self._record("read", args, kwargs)
        return Raw(json.dumps(QUOTA).encode())

    def replace_namespaced_resource_quota_status(self, *args: Any, **kwargs: Any) -> Raw:
        self._record("replace_status", args, kwargs)
        return Raw(json.dumps(QUOTA).encode())


@pytest.fixture
def core(monkeypatch: pytest.MonkeyPatch) -> RecordingCore:
    recording = RecordingCore()
    monkeypatch.setattr(client, "CoreV1Api", lambda api: recording)
    return recording


def test_each_call_reads_raw_json_within_the_timeout(core: RecordingCore) -> None:
    quotas = ResourceQuotaClient(client.ApiClient(), timeout=4)
    assert quotas.list("team-a") == [QUOTA]
    assert quotas.read("team-a", "q") == QUOTA
    assert quotas.replace_status(QUOTA) == QUOTA, "the quota as written comes back"
    assert [(method, args) for method, args, _ in core.calls] == [
        ("list", ("team-a",)),
        ("read", ("q", "team-a")),
        ("replace_status", ("q", "team-a", QUOTA)),
    ]
    for _, _, kwargs in core.calls:
        assert kwargs == {"_preload_content": False, "_request_timeout": 4}


def test_an_empty_list_has_no_items(core: RecordingCore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        core, "list_namespaced_resource_quota", lambda *a, **k: Raw(b'{"items": null}')
    )
    assert ResourceQuotaClient(client.ApiClient(), timeout=4).list("team-a") == []


def test_a_failed_precondition_reaches_the_caller_as_a_409(core: RecordingCore) -> None:
    core.fail_with = 409
    with pytest.raises(ApiException) as raised:
        ResourceQuotaClient(client.ApiClient(), timeout=4).replace_status(QUOTA)
    assert raised.value.status == 409


def test_a_caller_may_give_a_call_less_time(core: RecordingCore) -> None:
    quotas = ResourceQuotaClient(client.ApiClient(), timeout=4)
    quotas.list("team-a", timeout=1.5)
    quotas.read("team-a", "q", timeout=1.5)
    quotas.replace_status(QUOTA, timeout=1.5)
    assert [kwargs["_request_timeout"] for _, _, kwargs in core.calls] == [1.5, 1.5, 1.5]
