"""``prune images`` against the real API server and the real registry behind the real front
door, with images pushed by crane: a dry run changes nothing and lists what ``--confirm``
then removes, with the bytes it frees; a Pod's image is kept."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localcluster.crane import Crane
from localcluster.frontdoor import LocalFrontDoor
from tests.integration.support.cluster import ClusterEnv
from tests.integration.support.prune import (
    account_kubeconfig,
    assert_grants_exactly_used,
    prune_images,
)
from tests.integration.support.registry import (
    Upstream,
    account,
    frontdoor_stack,
    image_dir,
    login,
)

PRUNER_ACCOUNT = "image-pruner"
PRUNER_ROLE = "registry-v2:image-pruner"
"""The CronJob's identity and its role (manifests/base/image-pruner.yaml)."""
PRUNE_NOW = ("--keep-tag-revisions=1", "--keep-younger-than=0s")
"""Everything past the newest revision is old at once: the test's images are seconds old."""


@pytest.fixture(scope="module")
def stack() -> Iterator[ClusterEnv]:
    """This module's own stack: a prune is cluster-wide, and must not remove the Images
    other modules' tests are still reading."""
    with frontdoor_stack() as env:
        yield env


def push_history(
    stack: ClusterEnv, door: LocalFrontDoor, crane: Crane, ns: str, tmp_path: Path, count: int
) -> list[str]:
    """``count`` images pushed to ``<ns>/app:v1`` in turn; their digests, oldest first."""
    login(crane, door, account(stack, ns, "builder", "registry-editor"))
    digests = []
    for seed in range(1, count + 1):
        directory, _ = image_dir(tmp_path, 2000 + seed, 3000, seed=seed)
        pushed = crane.push(directory, f"{door.host}/{ns}/app:v1")
        assert pushed.returncode == 0, pushed.stderr
        digests.append(pushed.stdout.strip().rsplit("@", 1)[1])
    return digests


def history(stack: ClusterEnv, ns: str) -> list[str]:
    stream = stack.kubectl_json("get", "imagestream", "app", "-n", ns)
    return [item["image"] for tag in stream["status"]["tags"] for item in tag["items"]]


def image(stack: ClusterEnv, digest: str) -> dict[str, Any] | None:
    found = stack.kubectl("get", "image", digest.replace(":", "-"), "-o", "json", check=False)
    if found.returncode != 0:
        assert "NotFound" in found.stderr, found.stderr
        return None
    return dict(json.loads(found.stdout))


MANIFEST_TYPES = ",".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
"""What a pull accepts: distribution answers 404 for an OCI manifest to a client that does
not say it reads OCI."""


def stored(door: LocalFrontDoor, repository: str, digest: str) -> bool:
    """The registry itself (not the front door) still holds the manifest."""
    found = Upstream(door)(
        "HEAD", f"/v2/{repository}/manifests/{digest}", headers={"Accept": MANIFEST_TYPES}
    )
    assert found.status_code in (200, 404), found.text
    return found.status_code == 200


def blob_bytes(obj: dict[str, Any]) -> int:
    return int(obj["dockerImageConfig"]["size"]) + sum(
        int(layer["size"]) for layer in obj["dockerImageLayers"]
    )


def pod_using(stack: ClusterEnv, ns: str, reference: str) -> None:
    pod = f"""
apiVersion: v1
kind: Pod
metadata: {{name: web, namespace: {ns}}}
spec:
  containers: [{{name: web, image: "{reference}"}}]
"""
    stack.kubectl("apply", "-f", "-", input=pod)


def test_dry_run_changes_nothing_and_confirm_removes_what_it_listed_keeping_a_pods_image(
    stack: ClusterEnv, door: LocalFrontDoor, crane: Crane, ns: str, tmp_path: Path
) -> None:
    first, used, newest = push_history(stack, door, crane, ns, tmp_path, 3)
    pod_using(stack, ns, f"{door.host}/{ns}/app@{used}")
    freed = blob_bytes(image(stack, first) or {})  # every layer of each image is its own

    dry = prune_images(stack.kubeconfig, door, *PRUNE_NOW)
    assert dry.returncode == 0, dry.stderr
    rows = dry.stdout.splitlines()
    assert any(r.startswith("delete image") and first in r for r in rows), dry.stdout
    assert any(r.startswith("keep image") and used in r and f"Pod {ns}/web" in r for r in rows)
    assert "would free" in rows[-1] and f"({freed} bytes)" in rows[-1], rows[-1]
    assert not any(newest in r for r in rows if r.startswith("delete")), dry.stdout
    assert history(stack, ns) == [newest, used, first]
    assert image(stack, first) is not None
    assert stored(door, f"{ns}/app", first)

    done = prune_images(stack.kubeconfig, door, "--confirm", *PRUNE_NOW)
    assert done.returncode == 0, done.stderr
    assert [r for r in done.stdout.splitlines() if r.startswith("delete image")] == [
        r for r in rows if r.startswith("delete image")
    ]
    assert f"({freed} bytes)" in done.stdout.splitlines()[-1]
    assert history(stack, ns) == [newest, used]
    assert image(stack, first) is None
    assert image(stack, used) is not None
    assert not stored(door, f"{ns}/app", first)
    pulled = crane.run("manifest", f"{door.host}/{ns}/app@{used}")
    assert pulled.returncode == 0, pulled.stderr


def test_an_unparseable_image_reference_stops_the_prune_unless_ignored(
    stack: ClusterEnv, door: LocalFrontDoor, crane: Crane, ns: str, tmp_path: Path
) -> None:
    first, _ = push_history(stack, door, crane, ns, tmp_path, 2)
    pod_using(stack, ns, "Not:A:Reference")
    refused = prune_images(stack.kubeconfig, door, "--confirm", *PRUNE_NOW)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "Not:A:Reference" in refused.stderr and "--ignore-invalid-refs" in refused.stderr
    assert image(stack, first) is not None
    ignored = prune_images(stack.kubeconfig, door, "--ignore-invalid-refs", *PRUNE_NOW)
    assert ignored.returncode == 0, ignored.stderr
    assert first in ignored.stdout


def test_the_cronjobs_account_is_granted_exactly_what_a_confirmed_prune_uses(
    stack: ClusterEnv, door: LocalFrontDoor, crane: Crane, ns: str, tmp_path: Path
) -> None:
    first, _, _ = push_history(stack, door, crane, ns, tmp_path, 3)
    pod_using(stack, ns, f"{door.host}/{ns}/app:v1")
    kubeconfig = account_kubeconfig(stack, tmp_path, PRUNER_ACCOUNT, PRUNER_ROLE)
    done = prune_images(kubeconfig, door, "--confirm", "--ignore-invalid-refs", *PRUNE_NOW)
    assert done.returncode == 0, done.stderr
    assert image(stack, first) is None  # history written, an Image deleted
    assert_grants_exactly_used(stack, tmp_path, PRUNER_ACCOUNT)
