"""PullSecretApi: the TokenRequest it sends (audience, binding, lifetime) and its answer."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from controller.pullsecrets.api import PullSecretApi
from quota.objects import Obj

SECRET: Obj = {"metadata": {"name": "builder-dockercfg", "uid": "secret-uid"}}


@dataclass
class Raw:
    data: bytes


class RecordingCore:
    def __init__(self, status: Obj) -> None:
        self.status = status
        self.requests: list[tuple[str, str, Obj]] = []

    def create_namespaced_service_account_token(
        self, name: str, namespace: str, body: Obj, **kwargs: Any
    ) -> Raw:
        self.requests.append((name, namespace, body))
        return Raw(json.dumps({**body, "status": self.status}).encode())


class Unlimited:
    def acquire(self) -> None:
        return None


def api_with(monkeypatch: pytest.MonkeyPatch, status: Obj) -> tuple[PullSecretApi, RecordingCore]:
    core = RecordingCore(status)
    monkeypatch.setattr(client, "CoreV1Api", lambda api: core)
    return PullSecretApi(client.ApiClient(), Unlimited()), core


def test_the_token_is_for_the_given_audiences_bound_to_the_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api, core = api_with(monkeypatch, {"token": "t", "expirationTimestamp": "2026-01-01T01:00:00Z"})
    token, expires = api.request_token(
        "team-a", "builder", SECRET, 3600, ("image-registry.alauda.io",)
    )
    assert (token, expires) == ("t", dt.datetime(2026, 1, 1, 1, tzinfo=dt.UTC))
    [(name, namespace, body)] = core.requests
    assert (name, namespace) == ("builder", "team-a")
    assert body["spec"] == {
        "audiences": ["image-registry.alauda.io"],
        "expirationSeconds": 3600,
        "boundObjectRef": {
            "apiVersion": "v1",
            "kind": "Secret",
            "name": "builder-dockercfg",
            "uid": "secret-uid",
        },
    }


@pytest.mark.parametrize("expiration", [None, "soon", "2026-01-01T01:00:00"])
def test_an_answer_without_a_usable_expiry_is_an_error(
    monkeypatch: pytest.MonkeyPatch, expiration: str | None
) -> None:
    api, _ = api_with(monkeypatch, {"token": "t", "expirationTimestamp": expiration})
    with pytest.raises(ValueError, match="without a valid expirationTimestamp"):
        api.request_token("team-a", "builder", SECRET, 3600, ("a",))


class ServiceAccounts:
    def __init__(self, status: int | None) -> None:
        self.status = status

    def read_namespaced_service_account(self, name: str, namespace: str, **kwargs: Any) -> Raw:
        if self.status is not None:
            raise ApiException(status=self.status)
        return Raw(json.dumps({"metadata": {"name": name, "namespace": namespace}}).encode())


def test_a_serviceaccount_is_read_live_and_404_means_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    for status, expected in ((None, {"metadata": {"name": "b", "namespace": "n"}}), (404, None)):
        monkeypatch.setattr(client, "CoreV1Api", lambda api, s=status: ServiceAccounts(s))
        assert PullSecretApi(client.ApiClient(), Unlimited()).read_serviceaccount("n", "b") == (
            expected
        )
    monkeypatch.setattr(client, "CoreV1Api", lambda api: ServiceAccounts(500))
    with pytest.raises(ApiException):
        PullSecretApi(client.ApiClient(), Unlimited()).read_serviceaccount("n", "b")
