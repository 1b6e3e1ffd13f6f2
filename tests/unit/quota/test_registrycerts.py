"""What the nodes must trust: keys, the CA bundle read from the front door's Secret, and
what to do with the ConfigMap."""

from __future__ import annotations

import base64

import pytest

from quota.objects import Obj
from quota.pullsecrets.names import LABEL_MANAGED_BY, LABEL_MANAGED_BY_VALUE
from quota.registrycerts import (
    CA_KEY,
    CONFIGMAP_NAME,
    Action,
    Reason,
    desired_configmap,
    host_for_key,
    key_for_host,
    plan,
    read_ca_bundle,
)

NAMESPACE = "image-registry-system"
CA_ONE = "-----BEGIN CERTIFICATE-----\nONE\n-----END CERTIFICATE-----\n"
CA_TWO = "-----BEGIN CERTIFICATE-----\nTWO\n-----END CERTIFICATE-----\n"
HOSTS = [
    "image-registry.image-registry-system.svc:5000",
    "image-registry.image-registry-system.svc.cluster.local:5000",
]


def secret(ca: str | None = CA_ONE, *, raw: str | None = None) -> Obj:
    data = {"tls.crt": "eA=="}
    if raw is not None:
        data[CA_KEY] = raw
    elif ca is not None:
        data[CA_KEY] = base64.b64encode(ca.encode()).decode()
    return {"metadata": {"name": "image-registry-frontdoor-tls", "uid": "u"}, "data": data}


def stored(data: dict[str, str]) -> Obj:
    configmap = desired_configmap(NAMESPACE, data)
    configmap["metadata"]["resourceVersion"] = "7"
    return configmap


@pytest.mark.parametrize(
    ("host", "key"),
    [
        (
            "image-registry.image-registry-system.svc:5000",
            "image-registry.image-registry-system.svc..5000",
        ),
        ("registry.example.com", "registry.example.com"),
        ("10.0.0.7:5000", "10.0.0.7..5000"),
    ],
)
def test_a_port_is_written_as_openshift_does_and_read_back(host: str, key: str) -> None:
    assert key_for_host(host) == key
    assert host_for_key(key) == host


@pytest.mark.parametrize("host", ["[::1]:5000", "a" * 254, "bad host"])
def test_a_host_no_configmap_key_can_name_has_no_key(host: str) -> None:
    assert key_for_host(host) is None


def test_the_bundle_is_the_secrets_ca_crt() -> None:
    assert read_ca_bundle(secret()) == (CA_ONE, Reason.PUBLISHED)


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        (None, Reason.NO_SECRET),
        (secret(None), Reason.NO_CA),
        (secret(raw=""), Reason.NO_CA),
        (secret(raw="not base64!"), Reason.CA_NOT_PEM),
        (secret("just text"), Reason.CA_NOT_PEM),
        (secret(raw=base64.b64encode(b"\xff\xfe").decode()), Reason.CA_NOT_PEM),
    ],
)
def test_without_a_pem_ca_crt_nothing_is_published(given: Obj | None, reason: Reason) -> None:
    assert read_ca_bundle(given) == (None, reason)


def test_a_ca_and_no_configmap_creates_one_key_per_hostname() -> None:
    step = plan(NAMESPACE, secret(), HOSTS, None)
    assert step.action is Action.CREATE
    assert step.desired["metadata"]["name"] == CONFIGMAP_NAME
    assert step.desired["metadata"]["labels"] == {LABEL_MANAGED_BY: LABEL_MANAGED_BY_VALUE}
    assert step.desired["data"] == {
        "image-registry.image-registry-system.svc..5000": CA_ONE,
        "image-registry.image-registry-system.svc.cluster.local..5000": CA_ONE,
    }


def test_no_ca_and_no_configmap_creates_nothing() -> None:
    step = plan(NAMESPACE, secret(None), HOSTS, None)
    assert (step.action, step.reason) == (Action.NONE, Reason.NO_CA)


def test_the_same_ca_and_hostnames_write_nothing() -> None:
    current = plan(NAMESPACE, secret(), HOSTS, None).desired["data"]
    assert plan(NAMESPACE, secret(), HOSTS, stored(current)).action is Action.NONE


def test_a_rotated_ca_updates_every_key() -> None:
    current = plan(NAMESPACE, secret(), HOSTS, None).desired["data"]
    step = plan(NAMESPACE, secret(CA_TWO), HOSTS, stored(current))
    assert step.action is Action.UPDATE
    assert set(step.desired["data"].values()) == {CA_TWO}


def test_a_new_route_adds_its_key() -> None:
    current = plan(NAMESPACE, secret(), HOSTS, None).desired["data"]
    step = plan(NAMESPACE, secret(), [*HOSTS, "registry.example.com"], stored(current))
    assert step.action is Action.UPDATE
    assert step.desired["data"]["registry.example.com"] == CA_ONE


def test_a_ca_that_goes_empties_the_configmap() -> None:
    """A stale CA left on the nodes would still be trusted after the rotation retired it."""
    current = plan(NAMESPACE, secret(), HOSTS, None).desired["data"]
    step = plan(NAMESPACE, None, HOSTS, stored(current))
    assert (step.action, step.reason, step.desired["data"]) == (Action.UPDATE, Reason.NO_SECRET, {})
    assert plan(NAMESPACE, None, HOSTS, stored({})).action is Action.NONE


def test_a_hand_edited_or_unlabelled_configmap_is_set_right() -> None:
    current = plan(NAMESPACE, secret(), HOSTS, None).desired["data"]
    edited = stored({**current, "evil.example": CA_TWO})
    assert plan(NAMESPACE, secret(), HOSTS, edited).action is Action.UPDATE
    unlabelled = stored(current)
    unlabelled["metadata"]["labels"] = {}
    assert plan(NAMESPACE, secret(), HOSTS, unlabelled).action is Action.UPDATE
    binary = stored(current)
    binary["binaryData"] = {"x": "eA=="}
    assert plan(NAMESPACE, secret(), HOSTS, binary).action is Action.UPDATE


def test_a_host_without_a_key_is_left_out_and_said() -> None:
    step = plan(NAMESPACE, secret(), [*HOSTS, "[::1]:5000"], None)
    assert step.skipped == ("[::1]:5000",)
    assert len(step.desired["data"]) == 2
