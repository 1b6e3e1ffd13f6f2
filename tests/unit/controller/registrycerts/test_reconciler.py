"""The registry-certificates reconciler against fake caches and a fake API."""

from __future__ import annotations

import base64
import copy

import pytest

from controller.registrycerts.reconciler import NOT_PUBLISHED_REASON, RegistryCertsReconciler
from kube import apierrors
from kube.requeue import Requeue
from quota.objects import Obj
from quota.registrycerts import CA_KEY, CONFIGMAP_NAME, FRONTDOOR_TLS_SECRET
from tests.unit.apistatus import api_error

NAMESPACE = "image-registry-system"
NODE_CA = "image-registry-node-ca"
KEY = f"{NODE_CA}/{CONFIGMAP_NAME}"
CA = "-----BEGIN CERTIFICATE-----\nOLD\n-----END CERTIFICATE-----\n"
HOSTS = ["image-registry.image-registry-system.svc:5000"]


class FakeApi:
    """A one-ConfigMap store that checks preconditions as the API server does."""

    def __init__(self) -> None:
        self.store: dict[str, Obj] = {}
        self.calls: list[str] = []
        self._version = 0

    def create(self, namespace: str, body: Obj) -> Obj:
        self.calls.append("create")
        key = f"{namespace}/{body['metadata']['name']}"
        if key in self.store:
            raise api_error(apierrors.ALREADY_EXISTS)
        return self._put(key, body)

    def replace(self, namespace: str, name: str, body: Obj) -> Obj:
        self.calls.append("replace")
        key = f"{namespace}/{name}"
        if key not in self.store:
            raise api_error(apierrors.NOT_FOUND)
        if self.store[key]["metadata"]["resourceVersion"] != body["metadata"]["resourceVersion"]:
            raise api_error(apierrors.CONFLICT)
        return self._put(key, body)

    def _put(self, key: str, body: Obj) -> Obj:
        self._version += 1
        self.store[key] = copy.deepcopy(body)
        self.store[key]["metadata"]["resourceVersion"] = str(self._version)
        return self.store[key]


class Caches:
    """The informers as the API's store shows them (caught up)."""

    def __init__(self, api: FakeApi) -> None:
        self.api = api
        self.secret: Obj | None = None

    def get_secret(self, key: str) -> Obj | None:
        return self.secret if key == f"{NAMESPACE}/{FRONTDOOR_TLS_SECRET}" else None


class Store:
    def __init__(self, get: object) -> None:
        self.get = get


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def record(
        self, involved: Obj, event_type: str, reason: str, message: str, **_: object
    ) -> None:
        self.events.append((involved["name"], event_type, reason))


def tls_secret(ca: str | None) -> Obj:
    data = {} if ca is None else {CA_KEY: base64.b64encode(ca.encode()).decode()}
    return {
        "metadata": {"name": FRONTDOOR_TLS_SECRET, "namespace": NAMESPACE, "uid": "u"},
        "data": data,
    }


@pytest.fixture
def world() -> tuple[RegistryCertsReconciler, FakeApi, Caches, Recorder]:
    api = FakeApi()
    caches = Caches(api)
    recorder = Recorder()
    reconciler = RegistryCertsReconciler(
        api=api,
        namespace=NAMESPACE,
        node_ca_namespace=NODE_CA,
        secrets=Store(caches.get_secret),  # type: ignore[arg-type]
        configmaps=Store(api.store.get),  # type: ignore[arg-type]
        hostnames=lambda: list(HOSTS),
        recorder=recorder,
    )
    return reconciler, api, caches, recorder


World = tuple[RegistryCertsReconciler, FakeApi, Caches, Recorder]


def test_a_ca_is_published_once_and_a_replay_writes_nothing(world: World) -> None:
    reconciler, api, caches, _ = world
    caches.secret = tls_secret(CA)
    reconciler.reconcile(KEY)
    reconciler.reconcile(KEY)
    assert api.calls == ["create"]
    assert api.store[KEY]["data"] == {"image-registry.image-registry-system.svc..5000": CA}


def test_a_secret_without_ca_creates_nothing_and_says_why(world: World) -> None:
    reconciler, api, caches, recorder = world
    caches.secret = tls_secret(None)
    reconciler.reconcile(KEY)
    assert api.calls == []
    assert recorder.events == [(FRONTDOOR_TLS_SECRET, "Warning", NOT_PUBLISHED_REASON)]


def test_no_secret_at_all_is_no_event(world: World) -> None:
    """No front door installed: nothing to trust, and nothing wrong."""
    reconciler, api, _, recorder = world
    reconciler.reconcile(KEY)
    assert (api.calls, recorder.events) == ([], [])


def test_a_rotation_updates_with_the_version_read(world: World) -> None:
    reconciler, api, caches, _ = world
    caches.secret = tls_secret(CA)
    reconciler.reconcile(KEY)
    caches.secret = tls_secret(CA.replace("OLD", "NEW"))
    reconciler.reconcile(KEY)
    assert api.calls == ["create", "replace"]
    assert "NEW" in api.store[KEY]["data"]["image-registry.image-registry-system.svc..5000"]


def test_a_ca_removed_empties_the_configmap(world: World) -> None:
    reconciler, api, caches, _ = world
    caches.secret = tls_secret(CA)
    reconciler.reconcile(KEY)
    caches.secret = None
    reconciler.reconcile(KEY)
    assert api.store[KEY]["data"] == {}


def test_a_lost_race_is_retried_not_forced(world: World) -> None:
    reconciler, api, caches, _ = world
    caches.secret = tls_secret(CA)
    api.store[KEY] = {"metadata": {"name": CONFIGMAP_NAME, "resourceVersion": "1"}, "data": {}}
    stale = copy.deepcopy(api.store[KEY])
    api.store[KEY]["metadata"]["resourceVersion"] = "2"  # written since the cache saw it
    reconciler._configmaps = Store(lambda key: stale)  # type: ignore[assignment]
    with pytest.raises(Requeue):
        reconciler.reconcile(KEY)
