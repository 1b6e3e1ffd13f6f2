"""Managed pull secrets against the real API server, kube-controller-manager and our
webhook and reconciler."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.integration.support.cluster import CACHE_DEADLINE, ClusterEnv
from tests.integration.support.pullsecrets import (
    INTERNAL,
    REF,
    REGISTRY_AUDIENCE,
    docker_config,
    hostnames,
    managed_secrets,
    name_taken_events,
    pull_secret_names,
    read,
    token_of,
    token_review,
    wait_secret,
)

OPT_OUT = "image.alauda.io/managed-pull-secret"


def test_a_new_serviceaccount_gets_a_working_bound_pull_secret(
    cluster: ClusterEnv, namespace: str
) -> None:
    # Not ``builder``: the controller makes that one in every namespace (and again after
    # the delete below, which would race the garbage collector this test waits for).
    cluster.kubectl("create", "serviceaccount", "pusher", "-n", namespace)
    secret = wait_secret(cluster, namespace, "pusher")

    sa = read(cluster, "serviceaccount", "pusher", namespace)
    assert sa is not None
    assert sa["imagePullSecrets"] == [{"name": "pusher-dockercfg"}]
    assert sa["metadata"]["annotations"][REF] == "pusher-dockercfg"

    assert secret["metadata"]["annotations"]["image.alauda.io/service-account.name"] == "pusher"
    (owner,) = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "ServiceAccount",
        "pusher",
        sa["metadata"]["uid"],
    )
    auths = docker_config(secret)["auths"]
    assert set(auths) == INTERNAL
    token = token_of(secret)
    for entry in auths.values():
        assert entry["username"] == "serviceaccount"
        assert base64.b64decode(entry["auth"]).decode() == f"serviceaccount:{token}"

    status = token_review(cluster, token)
    assert status.get("authenticated") is True, status
    assert status["user"]["username"] == f"system:serviceaccount:{namespace}:pusher"
    assert status["audiences"] == [REGISTRY_AUDIENCE]

    # ... and is no credential for the cluster's API: a leaked pull secret opens nothing.
    assert token_review(cluster, token, audiences=[]).get("authenticated") is not True
    configuration = cluster.api.configuration
    as_api_client = requests.get(
        f"{configuration.host}/api",
        headers={"Authorization": f"Bearer {token}"},
        verify=configuration.ssl_ca_cert,
        timeout=10,
    )
    assert as_api_client.status_code == 401

    # A pod using the SA inherits the pull secret (ServiceAccount admission plugin).
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app"},
        "spec": {
            "serviceAccountName": "pusher",
            "containers": [
                {"name": "app", "image": "image-registry.image-registry-system.svc:5000/x/app:v1"}
            ],
        },
    }
    cluster.apply(pod, "-n", namespace)
    created = read(cluster, "pod", "app", namespace)
    assert created is not None
    assert {"name": "pusher-dockercfg"} in created["spec"]["imagePullSecrets"]

    # The token is bound to the Secret: deleting the Secret invalidates it ...
    cluster.kubectl("delete", "secret", "pusher-dockercfg", "-n", namespace)
    cluster.wait(
        lambda: token_review(cluster, token).get("authenticated") is not True,
        timeout=30,
        what="the old token to fail TokenReview",
    )
    # ... and the reconciler replaces it with a fresh one.
    renewed = wait_secret(cluster, namespace, "pusher")
    assert renewed["metadata"]["uid"] != secret["metadata"]["uid"]
    assert token_review(cluster, token_of(renewed))["authenticated"] is True

    # Deleting the SA deletes its Secret (garbage collector, through the ownerReference).
    cluster.kubectl("delete", "serviceaccount", "pusher", "-n", namespace)
    cluster.wait(
        lambda: read(cluster, "secret", "pusher-dockercfg", namespace) is None,
        timeout=60,
        what="the managed secret to be garbage-collected",
    )


def test_the_default_serviceaccount_of_a_new_namespace_gets_a_secret(
    cluster: ClusterEnv, namespace: str
) -> None:
    wait_secret(cluster, namespace, "default")
    assert pull_secret_names(cluster, namespace, "default") == ["default-dockercfg"]


def test_dry_run_shows_our_patch(cluster: ClusterEnv, namespace: str) -> None:
    """A dry-run create goes through our mutating webhook like a real one.

    That it stores nothing is the API server's part: the mutating handler has no write
    path (Secrets are the reconciler's, for stored ServiceAccounts only), so a "nothing
    was created" check here could not fail because of us. Our own side effect under
    dry-run, the quota charge, is tested in test_quota.
    """
    out = cluster.kubectl_json(
        "create", "serviceaccount", "ghost", "-n", namespace, "--dry-run=server"
    )
    assert out["imagePullSecrets"] == [{"name": "ghost-dockercfg"}]
    assert out["metadata"]["annotations"][REF] == "ghost-dockercfg"


def test_reapplying_a_manifest_keeps_exactly_one_managed_entry_and_user_entries_in_order(
    cluster: ClusterEnv, namespace: str
) -> None:
    plain = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "deployer"}}
    for _ in range(3):
        cluster.apply(plain, "-n", namespace)
        assert pull_secret_names(cluster, namespace, "deployer") == ["deployer-dockercfg"]

    with_users = {
        **plain,
        "metadata": {"name": "mixed"},
        "imagePullSecrets": [{"name": "user-a"}, {"name": "user-b"}],
    }
    cluster.apply(with_users, "-n", namespace)
    cluster.apply(with_users, "-n", namespace)
    wait_secret(cluster, namespace, "mixed")
    assert pull_secret_names(cluster, namespace, "mixed") == [
        "user-a",
        "user-b",
        "mixed-dockercfg",
    ]


def named_managed_secret(cluster: ClusterEnv, namespace: str, sa: str) -> dict[str, Any] | None:
    """The managed Secret that the SA's ref annotation and imagePullSecrets both name, once
    it carries a token; else None."""
    obj = read(cluster, "serviceaccount", sa, namespace) or {}
    ref = (obj.get("metadata", {}).get("annotations") or {}).get(REF)
    if not ref or ref not in pull_secret_names(cluster, namespace, sa):
        return None
    secret = read(cluster, "secret", ref, namespace)
    if secret is None or secret.get("type") != "kubernetes.io/dockerconfigjson":
        return None
    return secret if docker_config(secret).get("auths") else None


def test_a_squatted_name_gives_the_account_a_working_secret_under_a_fallback_name(
    cluster: ClusterEnv, namespace: str
) -> None:
    """Someone takes <sa>-dockercfg before the ServiceAccount exists: the account still
    gets its working pull secret, under a name generated by the API server, and the
    squatter's Secret is neither touched nor named."""
    cluster.kubectl(
        "create", "secret", "generic", "squatter-dockercfg", "-n", namespace, "--from-literal=k=v"
    )
    squatter = read(cluster, "secret", "squatter-dockercfg", namespace)
    assert squatter is not None
    cluster.kubectl("create", "serviceaccount", "squatter", "-n", namespace)

    secret: dict[str, Any] = cluster.wait(
        lambda: named_managed_secret(cluster, namespace, "squatter"),
        timeout=CACHE_DEADLINE,
        what="a managed pull secret named by the ServiceAccount",
    )
    name = secret["metadata"]["name"]
    assert name.startswith("squatter-dockercfg-") and name != "squatter-dockercfg"
    sa = read(cluster, "serviceaccount", "squatter", namespace)
    assert sa is not None
    (owner,) = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "ServiceAccount",
        "squatter",
        sa["metadata"]["uid"],
    )
    assert set(docker_config(secret)["auths"]) == INTERNAL
    status = token_review(cluster, token_of(secret))
    assert status.get("authenticated") is True, status
    assert status["user"]["username"] == f"system:serviceaccount:{namespace}:squatter"

    assert pull_secret_names(cluster, namespace, "squatter") == [name]
    assert read(cluster, "secret", "squatter-dockercfg", namespace) == squatter  # untouched
    assert [s["metadata"]["name"] for s in managed_secrets(cluster, namespace)
            if s["metadata"]["name"].startswith("squatter-")] == [name]  # fmt: skip
    [first] = cluster.wait(
        lambda: name_taken_events(cluster, namespace, "squatter"),
        timeout=CACHE_DEADLINE,
        what="a PullSecretNameTaken event saying why",
    )

    # A later reconcile (a touch of the SA) adopts it: still exactly that one Secret.
    cluster.kubectl("label", "serviceaccount", "squatter", "-n", namespace, "touched=yes")
    cluster.wait(
        lambda: any(
            int(e.get("count") or 1) > int(first.get("count") or 1)
            for e in name_taken_events(cluster, namespace, "squatter")
        ),
        timeout=CACHE_DEADLINE,
        what="the reconciler to have judged the SA again",
    )
    assert [s["metadata"]["name"] for s in managed_secrets(cluster, namespace)
            if s["metadata"]["name"].startswith("squatter-")] == [name]  # fmt: skip
    assert pull_secret_names(cluster, namespace, "squatter") == [name]
    assert read(cluster, "secret", "squatter-dockercfg", namespace) == squatter


def test_a_repeated_warning_is_one_event_whose_count_grows(
    cluster: ClusterEnv, namespace: str
) -> None:
    """As kubectl describe shows it: "x2 over 1m" on one Event, not two Events."""
    cluster.kubectl(
        "create", "secret", "generic", "squatter-dockercfg", "-n", namespace, "--from-literal=k=v"
    )
    cluster.kubectl("create", "serviceaccount", "squatter", "-n", namespace)
    [first] = cluster.wait(
        lambda: name_taken_events(cluster, namespace, "squatter"),
        timeout=CACHE_DEADLINE,
        what="a PullSecretNameTaken event",
    )
    # Any change to the ServiceAccount reconciles it again, and the name is still taken.
    cluster.kubectl("label", "serviceaccount", "squatter", "-n", namespace, "touched=yes")
    [grown] = cluster.wait(
        lambda: [
            e
            for e in name_taken_events(cluster, namespace, "squatter")
            if int(e.get("count") or 1) > int(first.get("count") or 1)
        ],
        timeout=CACHE_DEADLINE,
        what="the PullSecretNameTaken event's count to grow",
    )
    assert grown["metadata"]["name"] == first["metadata"]["name"]
    assert grown["count"] >= 2
    assert len(name_taken_events(cluster, namespace, "squatter")) == 1


def test_a_planted_pull_secret_is_never_named_by_the_webhook(
    cluster: ClusterEnv, namespace: str
) -> None:
    """Someone plants a working-looking pull Secret under the name the next ServiceAccount
    will be given; the SA must never list it, or its pods pull with that credential."""
    planted = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "victim-dockercfg"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(b'{"auths": {}}').decode()},
    }
    cluster.apply(planted, "-n", namespace)
    victim = json.dumps(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "victim"}}
    )

    def webhook_sees_the_planted_secret() -> bool:  # a dry run changes nothing
        result = cluster.kubectl(
            "create", "--dry-run=server", "-o", "json", "-n", namespace, "-f", "-",
            input=victim,
        )  # fmt: skip
        return "not managed by the registry" in result.stderr

    cluster.wait(webhook_sees_the_planted_secret, timeout=CACHE_DEADLINE, what="the Secret cached")
    created = cluster.kubectl("create", "-n", namespace, "-f", "-", input=victim)
    assert "Secret victim-dockercfg exists and is not managed by the registry" in (created.stderr)
    assert "victim-dockercfg" not in pull_secret_names(cluster, namespace, "victim")

    cluster.wait(
        lambda: name_taken_events(cluster, namespace, "victim"),
        timeout=CACHE_DEADLINE,
        what="the reconciler to refuse it too",
    )
    # The reconciler gives the SA its own Secret under a fallback name instead.
    secret = cluster.wait(
        lambda: named_managed_secret(cluster, namespace, "victim"),
        timeout=CACHE_DEADLINE,
        what="the fallback pull secret",
    )
    assert pull_secret_names(cluster, namespace, "victim") == [secret["metadata"]["name"]]
    assert "victim-dockercfg" not in pull_secret_names(cluster, namespace, "victim")


def test_opt_out_by_namespace_label_both_ways(cluster: ClusterEnv, namespace: str) -> None:
    cluster.kubectl("create", "serviceaccount", "worker", "-n", namespace)
    wait_secret(cluster, namespace, "worker")

    cluster.kubectl("label", "namespace", namespace, f"{OPT_OUT}=false")
    cluster.wait(
        lambda: (
            not managed_secrets(cluster, namespace)
            and pull_secret_names(cluster, namespace, "worker") == []
            and REF
            not in (read(cluster, "serviceaccount", "worker", namespace) or {})["metadata"].get(
                "annotations", {}
            )
        ),
        timeout=30,
        what="opt-out to remove what the service added",
    )
    # New SAs in an opted-out namespace are left alone by the webhook too.
    cluster.kubectl("create", "serviceaccount", "later", "-n", namespace)
    assert pull_secret_names(cluster, namespace, "later") == []

    cluster.kubectl("label", "namespace", namespace, f"{OPT_OUT}-")
    for sa in ("worker", "later", "default"):
        wait_secret(cluster, namespace, sa)

        def entry_back(sa: str = sa) -> bool:
            return pull_secret_names(cluster, namespace, sa) == [f"{sa}-dockercfg"]

        cluster.wait(
            entry_back,
            timeout=30,
            what=f"{sa} to get its entry back",
        )


def test_opt_out_by_serviceaccount_annotation_both_ways(
    cluster: ClusterEnv, namespace: str
) -> None:
    cluster.kubectl("create", "serviceaccount", "ci", "-n", namespace)
    cluster.kubectl(
        "patch",
        "serviceaccount",
        "ci",
        "-n",
        namespace,
        "--type=json",
        "-p",
        json.dumps([{"op": "add", "path": "/imagePullSecrets/0", "value": {"name": "mine"}}]),
    )
    wait_secret(cluster, namespace, "ci")
    cluster.kubectl("annotate", "serviceaccount", "ci", "-n", namespace, f"{OPT_OUT}=false")
    cluster.wait(
        lambda: (
            read(cluster, "secret", "ci-dockercfg", namespace) is None
            and pull_secret_names(cluster, namespace, "ci") == ["mine"]
        ),
        timeout=30,
        what="the SA opt-out to remove the managed secret and entry",
    )
    cluster.kubectl("annotate", "serviceaccount", "ci", "-n", namespace, f"{OPT_OUT}-")
    wait_secret(cluster, namespace, "ci")
    cluster.wait(
        lambda: pull_secret_names(cluster, namespace, "ci") == ["mine", "ci-dockercfg"],
        timeout=30,
        what="the entry to come back after the user's",
    )


@pytest.fixture
def registry_routes(cluster: ClusterEnv) -> Iterator[None]:
    yield
    cluster.kubectl("delete", "config.imageregistry.operator.alauda.io", "cluster", check=False)


def test_a_route_hostname_change_rewrites_every_managed_secret(
    cluster: ClusterEnv, namespace: str, registry_routes: None
) -> None:
    for sa in ("one", "two"):
        cluster.kubectl("create", "serviceaccount", sa, "-n", namespace)
    names = ("one", "two", "default")
    before = {sa: token_of(wait_secret(cluster, namespace, sa)) for sa in names}
    host = f"registry-{uuid.uuid4().hex[:6]}.example.com"
    config = {
        "apiVersion": "imageregistry.operator.alauda.io/v1",
        "kind": "Config",
        "metadata": {"name": "cluster"},
        "spec": {"routes": [{"name": "public", "hostname": host}]},
    }
    cluster.apply(config)

    cluster.wait(
        lambda: all(hostnames(cluster, namespace, sa) == INTERNAL | {host} for sa in names),
        timeout=30,
        what="every managed secret to list the new route",
    )
    for sa in names:
        token = token_of(wait_secret(cluster, namespace, sa))
        assert token != before[sa]
        assert token_review(cluster, token)["authenticated"] is True

    cluster.kubectl("delete", "config.imageregistry.operator.alauda.io", "cluster")
    cluster.wait(
        lambda: all(hostnames(cluster, namespace, sa) == INTERNAL for sa in names),
        timeout=30,
        what="the route to be dropped again",
    )
