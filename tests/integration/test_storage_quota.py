"""ResourceQuota ``alauda.io/image-storage`` against the real API server and the real
kube-controller-manager: recounted from the namespace's Images, shown by ``kubectl describe
quota`` next to native resources, freed at once by a tag history entry going away, and
validated at apply time. (Pushes through the front door: ``frontdoor/test_storage.py``.)"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import pytest

from localcluster.quotarelease import release_seconds
from quota.pushrecords import image_object_name
from tests.integration.support.cluster import CACHE_DEADLINE, RELEASE_DEADLINE, ClusterEnv
from tests.integration.support.objects import GROUP, quota, stream
from tests.integration.support.pushreview import Caller, push

S = "alauda.io/image-storage"
KI = 1024
RELEASE_AT_ONCE_SECONDS = 2.0
"""The issue's bound for freed quota to show (native quota: 0.06 s here)."""


def fresh_digest(seed: str) -> str:
    """A digest no other test's Image has: Images are cluster-scoped."""
    return "sha256:" + hashlib.sha256(f"{uuid.uuid4()}-{seed}".encode()).hexdigest()


def image(digest: str, config: int, *layers: tuple[str, int]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Image",
        "metadata": {"name": image_object_name(digest)},
        "dockerImageReference": f"image-registry.example/x/app@{digest}",
        "dockerImageMetadata": {"size": config + sum(size for _, size in layers)},
        "dockerImageConfig": {"digest": fresh_digest("config"), "size": config},
        "dockerImageLayers": [{"name": name, "size": size} for name, size in layers],
    }


def history(cluster: ClusterEnv, namespace: str, name: str, *digests: str) -> None:
    items = [{"image": d, "created": "2026-01-01T00:00:00Z"} for d in digests]
    patch = {"status": {"tags": [{"tag": "v1", "items": items}]}}
    cluster.kubectl(
        "patch", "imagestream", name, "-n", namespace, "--subresource=status",
        "--type=merge", "-p", json.dumps(patch),
    )  # fmt: skip


def storage_used(cluster: ClusterEnv, namespace: str, name: str = "space") -> str | None:
    obj = cluster.kubectl_json("get", "resourcequota", name, "-n", namespace)
    value: str | None = (obj.get("status") or {}).get("used", {}).get(S)
    return value


def test_storage_is_recounted_from_the_images_and_kept_by_the_quota_controller(
    cluster: ClusterEnv, namespace: str
) -> None:
    shared = fresh_digest("shared-layer")
    one, two = fresh_digest("one"), fresh_digest("two")
    cluster.apply(image(one, 100 * KI, (shared, 300 * KI)))
    cluster.apply(image(two, 24 * KI, (shared, 300 * KI), (fresh_digest("own"), 600 * KI)))
    cluster.apply(stream("app"), "-n", namespace)
    history(cluster, namespace, "app", two, one)
    cluster.apply(quota({S: "2Mi", "configmaps": "10"}, name="space"), "-n", namespace)
    # The shared layer once: 100Ki + 24Ki + 300Ki + 600Ki.
    cluster.wait(lambda: storage_used(cluster, namespace) == "1Mi", timeout=30, what="the recount")

    def configmaps() -> str | None:
        obj = cluster.kubectl_json("get", "resourcequota", "space", "-n", namespace)
        value: str | None = obj["status"]["used"].get("configmaps")
        return value

    cluster.wait(lambda: configmaps() is not None, timeout=60, what="the quota controller")
    counted = int(configmaps() or 0)
    cluster.kubectl("create", "configmap", "c1", "-n", namespace)
    cluster.wait(
        lambda: configmaps() == str(counted + 1),
        timeout=60,
        what="the quota controller to count the new configmap",
    )
    assert storage_used(cluster, namespace) == "1Mi"
    described = cluster.kubectl("describe", "resourcequota", "space", "-n", namespace).stdout
    assert any(line.split() == [S, "1Mi", "2Mi"] for line in described.splitlines()), described
    assert any(line.split()[:1] == ["configmaps"] for line in described.splitlines())


def test_a_history_entry_removed_frees_its_storage_within_two_seconds(
    cluster: ClusterEnv, namespace: str
) -> None:
    one, two = fresh_digest("one"), fresh_digest("two")
    cluster.apply(image(one, 1 * KI, (fresh_digest("a"), 99 * KI)))
    cluster.apply(image(two, 1 * KI, (fresh_digest("b"), 27 * KI)))
    cluster.apply(stream("app"), "-n", namespace)
    history(cluster, namespace, "app", two, one)
    cluster.apply(quota({S: "1Mi"}, name="space"), "-n", namespace)
    cluster.wait(lambda: storage_used(cluster, namespace) == "128Ki", timeout=30, what="recount")
    seconds = release_seconds(
        cluster.api,
        namespace,
        "space",
        S,
        "28Ki",
        lambda: history(cluster, namespace, "app", two),
        timeout=RELEASE_DEADLINE,
    )
    assert seconds < RELEASE_AT_ONCE_SECONDS


def test_a_malformed_storage_quota_is_refused_naming_the_field(
    cluster: ClusterEnv, namespace: str
) -> None:
    """A value that is no quantity, or a negative one, the API server refuses itself (its
    own validation runs before validating webhooks) with the field path, as for any
    quota; what only our webhook knows is refused by it, routed there by its
    matchConditions: a storage quota in a scoped quota, which could never count."""
    negative = cluster.apply(quota({S: "-1Mi"}, name="negative"), "-n", namespace, check=False)
    assert negative.returncode != 0
    assert f'"negative" is invalid: spec.hard[{S}]: Invalid value: "-1Mi"' in negative.stderr
    scoped = quota({S: "1Gi"}, name="scoped")
    scoped["spec"]["scopes"] = ["BestEffort"]
    result = cluster.apply(scoped, "-n", namespace, check=False)
    assert result.returncode != 0
    assert (
        f'ResourceQuota "scoped" is invalid: spec.scopes: Forbidden: {S} cannot be limited '
        "by a scoped quota: Images have no scopes"
    ) in result.stderr, result.stderr


@pytest.mark.local_only  # the registry calls our port directly (test_push_review.py)
def test_pushreview_denies_a_push_past_the_storage_quota_with_the_same_message(
    cluster: ClusterEnv, namespace: str
) -> None:
    held = fresh_digest("held")
    one = fresh_digest("one")
    cluster.apply(image(one, 1 * KI, (held, 511 * KI)))
    cluster.apply(stream("app"), "-n", namespace)
    history(cluster, namespace, "app", one)
    cluster.apply(quota({S: "1Mi"}, name="space"), "-n", namespace)
    cluster.wait(lambda: storage_used(cluster, namespace) == "512Ki", timeout=30, what="recount")
    cluster.kubectl("create", "serviceaccount", "registry", "-n", namespace)
    rule = {"apiGroups": [GROUP], "resources": ["pushreviews"], "verbs": ["create"]}
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "rules": [rule]}
    cluster.apply({**role, "metadata": {"name": "pushreview-creator"}}, "-n", namespace)
    cluster.kubectl(
        "create", "rolebinding", "registry-pushreviews", "--role=pushreview-creator",
        f"--serviceaccount={namespace}:registry", "-n", namespace,
    )  # fmt: skip
    token = cluster.kubectl("create", "token", "registry", "-n", namespace).stdout.strip()
    caller = Caller(cluster, namespace, token)
    spec = push(namespace, tag="v2", layers=(300 * KI, 200 * KI))
    spec["config"]["size"] = 100 * KI
    spec["layers"].append({"digest": held, "size": 511 * KI})  # held already: costs nothing

    def review() -> dict[str, Any]:
        result = caller.review(spec)
        assert result.status == 200, result.body
        status: dict[str, Any] = result.json()["status"]
        return status

    def judged_with_the_held_blob() -> dict[str, Any] | None:
        status = review()
        return status if f"requested: {S}=600Ki" in status.get("message", "") else None

    # The webhook's caches see the Image and the history a moment after the recount.
    status = cluster.wait(judged_with_the_held_blob, timeout=CACHE_DEADLINE, what="its caches")
    assert not status["allowed"]
    assert status["message"] == (
        f"exceeded quota: space, requested: {S}=600Ki, used: {S}=512Ki, limited: {S}=1Mi"
    )
    spec["layers"] = spec["layers"][1:]
    assert review()["allowed"], "300Ki more fits"
