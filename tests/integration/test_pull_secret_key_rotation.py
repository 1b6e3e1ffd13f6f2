"""A rotation of the cluster's service-account signing key refreshes every managed token.

The old public key stays in ``--service-account-key-file``, so the old tokens still
verify: exactly when nothing but the key id says they predate the rotation, and their
clock alone would keep them until 60 % of their lifetime.

Local stack only, on a stack of its own: it restarts kube-apiserver with another key,
which the session's other tests (and their audit log) must not see.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import jwt
import pytest

from controller.pullsecrets.signingkey import KEY_PROBE_SECONDS
from tests.integration.support.cluster import PROPAGATION_SECONDS, ClusterEnv, own_stack
from tests.integration.support.pullsecrets import (
    managed_secrets,
    token_of,
    token_review,
    wait_secret,
)

pytestmark = pytest.mark.local_only

ACCOUNTS = ("default", "builder", "deployer")
"""Kubernetes makes ``default``, our controller ``builder``, the test ``deployer``."""
RESTART_DEADLINE = 120.0
"""For kube-apiserver to serve again (its cold start on 2 cores), as the fault tests."""
ROTATION_DEADLINE = KEY_PROBE_SECONDS + RESTART_DEADLINE + 4 * PROPAGATION_SECONDS
"""The next probe sees the new key (or the controller, if it lost its Lease during the
restart, comes back and probes at once), then a few Secrets are rewritten."""


def key_id(token: str) -> str:
    kid: str = jwt.get_unverified_header(token)["kid"]
    return kid


@pytest.fixture(scope="module")
def rotation_cluster() -> Iterator[ClusterEnv]:
    with own_stack() as cluster:
        yield cluster


def test_a_signing_key_rotation_refreshes_every_managed_token_at_once(
    rotation_cluster: ClusterEnv,
) -> None:
    cluster = rotation_cluster
    assert cluster.stack is not None
    namespace = f"rot-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", namespace)
    cluster.kubectl("create", "serviceaccount", "deployer", "-n", namespace)
    before = {sa: token_of(wait_secret(cluster, namespace, sa)) for sa in ACCOUNTS}
    (old_key,) = {key_id(token) for token in before.values()}

    cluster.stack.cp.rotate_service_account_signing_key(timeout=RESTART_DEADLINE)
    new_key = key_id(cluster.kubectl("create", "token", "default", "-n", namespace).stdout)
    assert new_key != old_key, "the API server still signs with the old key"
    # The case at hand: the old tokens still verify, so only their key id says they are old.
    for token in before.values():
        assert token_review(cluster, token).get("authenticated") is True

    def every_token_signed_by_the_new_key() -> bool:
        secrets = managed_secrets(cluster, namespace)
        assert len(secrets) == len(ACCOUNTS), [s["metadata"]["name"] for s in secrets]
        return all(key_id(token_of(secret)) == new_key for secret in secrets)

    cluster.wait(
        every_token_signed_by_the_new_key,
        timeout=ROTATION_DEADLINE,
        what="every managed token to be signed by the new key",
    )
    for secret in managed_secrets(cluster, namespace):
        assert secret["metadata"]["annotations"]["image.alauda.io/token-key-id"] == new_key
        assert token_review(cluster, token_of(secret)).get("authenticated") is True
