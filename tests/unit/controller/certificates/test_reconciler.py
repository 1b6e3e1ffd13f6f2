"""The certificate manager against a fake API server: the Secret, the caBundles, and the
order of writes that keeps the webhook trusted."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import itertools

import pytest

from controller.certificates import material as m
from controller.certificates.api import apply_configuration
from controller.certificates.reconciler import (
    CONFIGURATION_KINDS,
    RECHECK_SECONDS,
    CertificateConfig,
    CertificateReconciler,
)
from controller.certificates.rules import CA_VALIDITY, SERVING_VALIDITY
from kube import certs
from kube.apierrors import ALREADY_EXISTS, CONFLICT
from kube.requeue import Requeue
from quota.objects import Obj
from tests.unit.apistatus import api_error

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
NAMESPACE = "image-registry-system"
KEY = f"{NAMESPACE}/{m.SECRET_NAME}"
CONFIGURATION = "image-registry-webhook"
HOSTS = tuple(certs.serving_hosts("image-registry-webhook", NAMESPACE))
PROPAGATION = dt.timedelta(seconds=30)
WEBHOOKS = {
    "MutatingWebhookConfiguration": ["serviceaccounts.webhook.image.alauda.io"],
    "ValidatingWebhookConfiguration": [
        "imagestreams.webhook.image.alauda.io",
        "policies.webhook.image.alauda.io",
    ],
}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, delta: dt.timedelta) -> None:
        self.now += delta


class FakeApi:
    """The API server, for the calls the manager makes: resourceVersion preconditions on
    the Secret, and server-side apply that sets only the caBundle of named webhooks."""

    def __init__(self) -> None:
        self.secret: Obj | None = None
        self.configurations: dict[str, Obj | None] = {
            kind: {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": kind,
                "metadata": {"name": CONFIGURATION},
                "webhooks": [
                    {"name": n, "clientConfig": {"url": "https://x"}, "timeoutSeconds": 5}
                    for n in names
                ],
            }
            for kind, names in WEBHOOKS.items()
        }
        self.writes: list[str] = []
        self.conflict_next_replace = False
        self._rv = itertools.count(1)

    def read_secret(self, namespace: str, name: str) -> Obj | None:
        assert (namespace, name) == (NAMESPACE, m.SECRET_NAME)
        return copy.deepcopy(self.secret)

    def create_secret(self, namespace: str, body: Obj) -> Obj:
        if self.secret is not None:
            raise api_error(ALREADY_EXISTS, name=m.SECRET_NAME, kind="secrets")
        self.writes.append("create_secret")
        self.secret = copy.deepcopy(body)
        self.secret["metadata"]["resourceVersion"] = str(next(self._rv))
        return copy.deepcopy(self.secret)

    def replace_secret(self, namespace: str, name: str, body: Obj) -> Obj:
        assert self.secret is not None
        if self.conflict_next_replace or (
            body["metadata"].get("resourceVersion") != self.secret["metadata"]["resourceVersion"]
        ):
            self.conflict_next_replace = False
            raise api_error(CONFLICT, name=m.SECRET_NAME, kind="secrets")
        self.writes.append("replace_secret")
        self.secret = copy.deepcopy(body)
        self.secret["metadata"]["resourceVersion"] = str(next(self._rv))
        return copy.deepcopy(self.secret)

    def read_configuration(self, kind: str, name: str) -> Obj | None:
        assert name == CONFIGURATION
        return copy.deepcopy(self.configurations[kind])

    def apply_ca_bundle(self, kind: str, name: str, webhooks: list[str], bundle: bytes) -> None:
        current = self.configurations[kind]
        assert current is not None
        self.writes.append(f"apply {kind}")
        applied = apply_configuration(kind, name, webhooks, bundle)
        by_name = {w["name"]: w for w in current["webhooks"]}
        for entry in applied["webhooks"]:
            assert entry["name"] in by_name, "apply would create a half webhook (422)"
            by_name[entry["name"]]["clientConfig"].update(entry["clientConfig"])

    # --- what the tests look at ----------------------------------------------------------

    def data(self, key: str) -> bytes:
        assert self.secret is not None
        return base64.b64decode(self.secret["data"][key])

    def annotations(self) -> dict[str, str]:
        assert self.secret is not None
        return dict(self.secret["metadata"].get("annotations") or {})

    def published(self) -> set[bytes]:
        """Every caBundle the configurations carry (one, when all agree)."""
        return {
            base64.b64decode(w["clientConfig"].get("caBundle", ""))
            for c in self.configurations.values()
            if c is not None
            for w in c["webhooks"]
        }


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def manager(api: FakeApi, clock: Clock) -> CertificateReconciler:
    config = CertificateConfig(NAMESPACE, CONFIGURATION, HOSTS, propagation=PROPAGATION)
    return CertificateReconciler(api, config, now=clock)


def serving_issuer(api: FakeApi) -> bytes:
    """The CA of the bundle that signed the Secret's serving certificate."""
    leaf = api.data(m.TLS_CERT)
    return next(ca for ca in certs.split_pem(api.data(m.CA_BUNDLE)) if certs.issued_by(leaf, ca))


def request_rotation(api: FakeApi, at: str) -> None:
    assert api.secret is not None
    api.secret["metadata"]["annotations"][m.ROTATE_REQUESTED] = at
    api.secret["metadata"]["resourceVersion"] += "x"  # someone else wrote it


def test_a_missing_secret_is_created_with_a_ca_a_serving_certificate_and_published(
    api: FakeApi, manager: CertificateReconciler
) -> None:
    assert manager.reconcile(KEY) == RECHECK_SECONDS
    assert api.secret is not None and api.secret["type"] == "kubernetes.io/tls"
    bundle = api.data(m.CA_BUNDLE)
    assert len(certs.split_pem(bundle)) == 1
    assert certs.key_matches(bundle, api.data(m.CA_KEY))
    leaf = api.data(m.TLS_CERT)
    assert certs.issued_by(leaf, bundle) and certs.key_matches(leaf, api.data(m.TLS_KEY))
    info = certs.describe(leaf)
    assert info.hosts == set(HOSTS)
    assert info.not_after - T0 == SERVING_VALIDITY
    assert certs.describe(bundle).not_after - T0 == CA_VALIDITY
    assert api.published() == {bundle}
    assert api.writes == [f"apply {k}" for k in CONFIGURATION_KINDS] + ["create_secret"], (
        "the bundle is published before the Secret that pods load is written"
    )


def test_a_settled_state_writes_nothing(api: FakeApi, manager: CertificateReconciler) -> None:
    manager.reconcile(KEY)
    api.writes.clear()
    assert manager.reconcile(KEY) == RECHECK_SECONDS
    assert api.writes == []


def test_a_requested_rotation_publishes_both_cas_then_switches_then_drops_the_old(
    api: FakeApi, manager: CertificateReconciler, clock: Clock
) -> None:
    manager.reconcile(KEY)
    old_ca, old_leaf = api.data(m.CA_BUNDLE), api.data(m.TLS_CERT)
    request_rotation(api, "2030-01-01T00:00:00.5Z")
    with pytest.raises(Requeue):  # our read was older than the request's write
        api.conflict_next_replace = True
        manager.reconcile(KEY)

    # 1. The new CA joins, published beside the old; the served certificate stays.
    assert manager.reconcile(KEY) == PROPAGATION.total_seconds()
    first, new_ca = certs.split_pem(api.data(m.CA_BUNDLE))
    assert first == old_ca and api.data(m.TLS_CERT) == old_leaf
    assert api.published() == {old_ca + new_ca}
    assert api.annotations()[m.ROTATE_HANDLED] == "2030-01-01T00:00:00.5Z"

    # 2. Not before the API servers have had the propagation time: the new CA signs.
    clock.advance(PROPAGATION - dt.timedelta(seconds=1))
    manager.reconcile(KEY)
    assert api.data(m.TLS_CERT) == old_leaf
    clock.advance(dt.timedelta(seconds=1))
    assert manager.reconcile(KEY) == PROPAGATION.total_seconds()
    assert serving_issuer(api) == new_ca
    assert api.published() == {old_ca + new_ca}, "the old CA stays while pods may serve its"

    # 3. Once the pods have had it as long: the old CA leaves.
    clock.advance(PROPAGATION - dt.timedelta(seconds=1))
    manager.reconcile(KEY)
    assert api.published() == {old_ca + new_ca}
    clock.advance(dt.timedelta(seconds=1))
    manager.reconcile(KEY)
    assert api.data(m.CA_BUNDLE) == new_ca and api.published() == {new_ca}
    assert certs.key_matches(new_ca, api.data(m.CA_KEY))
    api.writes.clear()
    assert manager.reconcile(KEY) == RECHECK_SECONDS and api.writes == []


def test_the_serving_certificate_is_renewed_by_the_same_ca_when_due(
    api: FakeApi, manager: CertificateReconciler, clock: Clock
) -> None:
    manager.reconcile(KEY)
    ca, leaf = api.data(m.CA_BUNDLE), api.data(m.TLS_CERT)
    clock.advance(SERVING_VALIDITY * 2 / 3)
    manager.reconcile(KEY)
    assert api.data(m.TLS_CERT) != leaf and serving_issuer(api) == ca
    assert api.data(m.CA_BUNDLE) == ca and not any(w.startswith("apply") for w in api.writes[2:])


def test_a_missing_configuration_holds_the_switch_to_a_new_ca(
    api: FakeApi, manager: CertificateReconciler, clock: Clock
) -> None:
    manager.reconcile(KEY)
    old_ca = api.data(m.CA_BUNDLE)
    api.configurations["ValidatingWebhookConfiguration"] = None
    request_rotation(api, "now")
    manager.reconcile(KEY)
    assert m.BUNDLE_PUBLISHED_AT not in api.annotations()
    clock.advance(10 * PROPAGATION)
    manager.reconcile(KEY)
    assert serving_issuer(api) == old_ca, "no configuration carries the new CA: no switch"


def test_a_bundle_someone_else_overwrote_is_put_back_and_the_switch_waits_again(
    api: FakeApi, manager: CertificateReconciler, clock: Clock
) -> None:
    manager.reconcile(KEY)
    old_ca = api.data(m.CA_BUNDLE)
    request_rotation(api, "now")
    manager.reconcile(KEY)
    both = api.data(m.CA_BUNDLE)
    clock.advance(PROPAGATION - dt.timedelta(seconds=1))
    for configuration in api.configurations.values():  # an old installer re-applies
        assert configuration is not None
        for webhook in configuration["webhooks"]:
            webhook["clientConfig"]["caBundle"] = base64.b64encode(old_ca).decode()
    manager.reconcile(KEY)
    assert api.published() == {both}
    clock.advance(dt.timedelta(seconds=1))
    manager.reconcile(KEY)
    assert serving_issuer(api) == old_ca, "the propagation wait restarted when it was put back"
    clock.advance(PROPAGATION)
    manager.reconcile(KEY)
    assert serving_issuer(api) != old_ca


def test_a_secret_from_cert_manager_is_taken_over_through_a_rotation(
    api: FakeApi, manager: CertificateReconciler, clock: Clock
) -> None:
    """No ca.key: the served certificate keeps working while our own CA takes over."""
    foreign_ca = certs.new_ca("cert-manager-ca", now=T0)
    leaf = certs.issue(foreign_ca, "webhook", hosts=HOSTS, now=T0)
    pieces = {m.TLS_CERT: leaf.cert_pem, m.TLS_KEY: leaf.key_pem, m.CA_BUNDLE: foreign_ca.cert_pem}
    api.secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": m.SECRET_NAME, "namespace": NAMESPACE, "resourceVersion": "7"},
        "data": {k: base64.b64encode(v).decode() for k, v in pieces.items()},
    }
    manager.reconcile(KEY)
    assert api.data(m.TLS_CERT) == leaf.cert_pem
    assert certs.split_pem(api.data(m.CA_BUNDLE))[0] == foreign_ca.cert_pem
    for _ in range(2):
        clock.advance(PROPAGATION)
        manager.reconcile(KEY)
    (own,) = certs.split_pem(api.data(m.CA_BUNDLE))
    assert own != foreign_ca.cert_pem and serving_issuer(api) == own


def test_the_apply_names_only_caBundle_fields_of_existing_webhooks() -> None:
    body = apply_configuration("ValidatingWebhookConfiguration", "cfg", ["a", "b"], b"PEM")
    assert body == {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "cfg"},
        "webhooks": [
            {"name": "a", "clientConfig": {"caBundle": "UEVN"}},
            {"name": "b", "clientConfig": {"caBundle": "UEVN"}},
        ],
    }


def test_a_webhook_an_upgrade_adds_gets_the_bundle_too(
    api: FakeApi, manager: CertificateReconciler
) -> None:
    manager.reconcile(KEY)
    configuration = api.configurations["ValidatingWebhookConfiguration"]
    assert configuration is not None
    configuration["webhooks"].append({"name": "new.webhook.image.alauda.io", "clientConfig": {}})
    manager.reconcile(KEY)
    assert api.published() == {api.data(m.CA_BUNDLE)}
