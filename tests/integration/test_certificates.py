"""Built-in certificates: rotation under load, and a caBundle written field by field.

The local stack runs the controller's certificate manager with a short propagation time
(``CERTIFICATE_PROPAGATION_SECONDS``) and mirrors its Secret into the server's files as
the kubelet would, so a whole CA rotation takes seconds. Local stack only: these read our
server's port and run ``certs rotate`` with the admin's kubeconfig.
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from controller.certificates.material import CA_BUNDLE, SECRET_NAME, TLS_CERT
from controller.certificates.reconciler import FIELD_MANAGER
from kube import certs
from localcluster.binaries import REPO_ROOT
from localcluster.stack import CERTIFICATE_PROPAGATION_SECONDS, Stack
from tests.integration.support.cluster import (
    CACHE_DEADLINE,
    CONFIGURATION_NAME,
    SERVICE_NAMESPACE,
    ClusterEnv,
)
from tests.integration.support.load import Load

pytestmark = pytest.mark.local_only

LOAD_SECONDS = float(os.environ.get("ROTATION_LOAD_SECONDS", "20"))
"""The issue asks for 60 s of load (``ROTATION_LOAD_SECONDS=60``); ``make test`` runs 20 s,
long enough for both rotations to happen in full under load."""
ROTATION_DEADLINE = 2 * CERTIFICATE_PROPAGATION_SECONDS + 2 * CACHE_DEADLINE
"""A rotation is two propagation waits, plus a reconcile and a Secret sync on each side."""
CLI_TIMEOUT = 60.0
"""``certs rotate`` itself waits for the leader (its --timeout default)."""
KINDS = {
    "MutatingWebhookConfiguration": "mutatingwebhookconfiguration",
    "ValidatingWebhookConfiguration": "validatingwebhookconfiguration",
}


# --- what the cluster holds -------------------------------------------------------------


def secret_pem(cluster: ClusterEnv, key: str) -> bytes:
    secret = cluster.kubectl_json("get", "secret", SECRET_NAME, "-n", SERVICE_NAMESPACE)
    return base64.b64decode(secret["data"][key])


def published(cluster: ClusterEnv) -> set[bytes]:
    """Every caBundle of both configurations (one when they agree)."""
    bundles = set()
    for resource in KINDS.values():
        configuration = cluster.kubectl_json("get", resource, CONFIGURATION_NAME)
        for webhook in configuration["webhooks"]:
            bundles.add(base64.b64decode(webhook["clientConfig"].get("caBundle", "")))
    return bundles


def served_certificate(stack: Stack) -> bytes:
    """The PEM certificate our server presents to a new connection."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", stack.webhook_port), timeout=CACHE_DEADLINE) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


def settled_ca(cluster: ClusterEnv, stack: Stack) -> bytes | None:
    """The one CA of a finished rotation: alone in the Secret's bundle and in both
    configurations, the signer of the Secret's serving certificate and of the one our
    server presents; None while a rotation is under way."""
    bundle = secret_pem(cluster, CA_BUNDLE)
    if len(certs.split_pem(bundle)) != 1 or published(cluster) != {bundle}:
        return None
    if not certs.issued_by(secret_pem(cluster, TLS_CERT), bundle):
        return None
    return bundle if certs.issued_by(served_certificate(stack), bundle) else None


def rotate(cluster: ClusterEnv) -> None:
    """``image-registry-webhook certs rotate``, as a user runs it."""
    result = subprocess.run(
        [
            *(sys.executable, "-m", "cli", "certs", "rotate"),
            *(f"--kubeconfig={cluster.kubeconfig}", f"--namespace={SERVICE_NAMESPACE}"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=CLI_TIMEOUT + CACHE_DEADLINE,
    )
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def rotated_from(cluster: ClusterEnv, stack: Stack, old: bytes) -> bytes:
    """Rotate, and wait until a new CA has settled."""
    rotate(cluster)
    new: bytes = cluster.wait(
        lambda: (ca := settled_ca(cluster, stack)) not in (None, old) and ca,
        timeout=ROTATION_DEADLINE,
        what="the rotation to finish",
    )
    return new


@pytest.fixture
def stack(cluster: ClusterEnv) -> Stack:
    stack = cluster.stack
    assert stack is not None and stack.managed_certificates and stack.webhook is not None
    return stack


@pytest.fixture
def load(cluster: ClusterEnv, namespace: str) -> Iterator[Load]:
    running = Load(cluster.api, namespace)
    yield running
    running.finish()


def test_certificate_rotation_under_load_fails_no_request(
    cluster: ClusterEnv, stack: Stack, load: Load
) -> None:
    """Two ``certs rotate`` while ServiceAccounts and ImageStreams are created through the
    real API server: every create is admitted by our webhooks, and our server, never
    restarted, ends up presenting a certificate of a CA that did not exist before."""
    assert stack.webhook is not None
    server_pid = stack.webhook.pid
    first = cluster.wait(
        lambda: settled_ca(cluster, stack), timeout=ROTATION_DEADLINE, what="a settled CA"
    )
    load.start()
    load.keep_running_until(LOAD_SECONDS / 6)
    second = rotated_from(cluster, stack, first)
    load.keep_running_until(LOAD_SECONDS / 2)
    third = rotated_from(cluster, stack, second)
    # Past the last bundle change, and at least as long as asked for.
    load.keep_running_until(
        max(LOAD_SECONDS, time.monotonic() - load.started + 2 * CERTIFICATE_PROPAGATION_SECONDS)
    )
    load.finish()
    assert third != first
    assert load.failures == [], f"{len(load.failures)} of {load.created} requests failed"
    assert load.created >= LOAD_SECONDS, "the load was no load"
    assert stack.webhook.running() and stack.webhook.pid == server_pid


# --- the caBundle, field by field -------------------------------------------------------


def leaf_fields(fields: dict[str, Any], path: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """The paths a managedFields entry owns (``fieldsV1``), down to each leaf."""
    leaves: set[tuple[str, ...]] = set()
    for key, sub in fields.items():
        if key == ".":
            continue
        leaves |= leaf_fields(sub, (*path, key)) if sub else {(*path, key)}
    return leaves


def configuration_of(cluster: ClusterEnv, resource: str) -> dict[str, Any]:
    """A webhook configuration with its managedFields (kubectl hides them by default)."""
    found: dict[str, Any] = cluster.kubectl_json(
        "get", resource, CONFIGURATION_NAME, "--show-managed-fields"
    )
    return found


def owned(configuration: dict[str, Any], manager: str) -> set[tuple[str, ...]]:
    return {
        leaf
        for entry in configuration["metadata"].get("managedFields") or []
        if entry["manager"] == manager
        for leaf in leaf_fields(entry.get("fieldsV1") or {})
    }


def test_the_manager_owns_and_forces_only_the_cabundle_fields(
    cluster: ClusterEnv, stack: Stack
) -> None:
    """Another manager's field inside our webhooks survives a rotation; a caBundle that a
    cainjector-like manager also applied is taken over (server-side apply, forced), and
    nothing but caBundle (and the list keys) is ours."""
    resource = KINDS["ValidatingWebhookConfiguration"]
    before = cluster.kubectl_json("get", resource, CONFIGURATION_NAME)
    timeout = before["webhooks"][1]["timeoutSeconds"]
    patch = '[{"op": "replace", "path": "/webhooks/1/timeoutSeconds", "value": %d}]'
    cluster.kubectl(
        "patch", resource, CONFIGURATION_NAME, "--type=json", "--field-manager=platform-team",
        "-p", patch % (timeout + 2),
    )  # fmt: skip
    try:
        ca = cluster.wait(
            lambda: settled_ca(cluster, stack), timeout=ROTATION_DEADLINE, what="a settled CA"
        )
        same = base64.b64encode(ca).decode()
        cluster.apply(
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingWebhookConfiguration",
                "metadata": {"name": CONFIGURATION_NAME},
                "webhooks": [
                    {"name": w["name"], "clientConfig": {"caBundle": same}}
                    for w in before["webhooks"]
                ],
            },
            "--server-side",
            "--field-manager=cainjector",
        )
        injected = owned(configuration_of(cluster, resource), "cainjector")
        assert any(leaf[-1] == "f:caBundle" for leaf in injected)
        rotated_from(cluster, stack, ca)
        after = configuration_of(cluster, resource)
        assert after["webhooks"][1]["timeoutSeconds"] == timeout + 2
        assert any(leaf[-1] == "f:timeoutSeconds" for leaf in owned(after, "platform-team"))
        assert not any(leaf[-1] == "f:caBundle" for leaf in owned(after, "cainjector"))
        for kind, resource_name in KINDS.items():
            configuration = configuration_of(cluster, resource_name)
            ours = owned(configuration, FIELD_MANAGER)
            assert {leaf[-1] for leaf in ours} <= {"f:caBundle", "f:name"}, (kind, ours)
            assert sum(leaf[-1] == "f:caBundle" for leaf in ours) == len(configuration["webhooks"])
            entry = next(
                e for e in configuration["metadata"]["managedFields"]
                if e["manager"] == FIELD_MANAGER
            )  # fmt: skip
            assert entry["operation"] == "Apply"
    finally:
        cluster.kubectl(
            "patch", resource, CONFIGURATION_NAME, "--type=json",
            "--field-manager=platform-team", "-p", patch % timeout,
        )  # fmt: skip
