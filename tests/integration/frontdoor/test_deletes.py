"""Deletes with a real client (crane) through the real front door, before a real CNCF
registry, against the real API server: a deleted tag leaves the ImageStream, the tag list
and the registry; an Image goes when nothing references it and stays while something
does; a blob a recorded image holds is refused; only those granted delete may."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localcluster.crane import Crane
from localcluster.frontdoor import LocalFrontDoor
from quota.pushrecords import image_object_name
from tests.integration.support.cluster import CACHE_DEADLINE, ClusterEnv
from tests.integration.support.objects import history, imagestream, quota, used
from tests.integration.support.registry import Registry, Upstream, account, image_dir, login

pytestmark = pytest.mark.local_only


def registry_tags(upstream: Upstream, repository: str) -> list[str]:
    """The tags the registry itself has (none for a repository it does not know)."""
    answer = upstream("GET", f"/v2/{repository}/tags/list")
    if answer.status_code == 404:
        return []
    assert answer.status_code == 200, answer.text
    return sorted(answer.json().get("tags") or [])


def has_image(stack: ClusterEnv, digest: str) -> bool:
    found = stack.kubectl("get", "image", image_object_name(digest), check=False)
    return found.returncode == 0


def test_a_deleted_tag_leaves_the_stream_the_list_and_the_registry_then_its_image_goes(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    stack.apply(quota({"alauda.io/imagestreams": "5"}), "-n", ns)
    login(crane, door, account(stack, ns, "builder", "registry-editor"))
    upstream = Upstream(door)
    shared_dir, shared = image_dir(tmp_path, 1500, seed=61)
    own_dir, own = image_dir(tmp_path, 900, seed=62)
    for directory, ref in ((shared_dir, "v1"), (shared_dir, "v2"), (own_dir, "v3")):
        pushed = crane.push(directory, f"{door.host}/{ns}/app:{ref}")
        assert pushed.returncode == 0, pushed.stderr
    stack.wait(lambda: used(stack, ns) == "1", timeout=CACHE_DEADLINE, what="usage counted")

    deleted = crane.run("delete", f"{door.host}/{ns}/app:v1")
    assert deleted.returncode == 0, deleted.stderr
    assert history(stack, ns, "app") == {"v2": [shared.digest], "v3": [own.digest]}
    assert crane.run("ls", f"{door.host}/{ns}/app").stdout.split() == ["v2", "v3"]
    assert registry_tags(upstream, f"{ns}/app") == ["v2", "v3"]
    assert crane.digest(f"{door.host}/{ns}/app:v1").returncode != 0
    # v2 still references the image: its Image and its pulls stay.
    assert has_image(stack, shared.digest)
    assert crane.digest(f"{door.host}/{ns}/app:v2").stdout.strip() == shared.digest

    assert crane.run("delete", f"{door.host}/{ns}/app:v2").returncode == 0
    assert not has_image(stack, shared.digest)
    gone = upstream("GET", f"/v2/{ns}/app/manifests/{shared.digest}")
    assert gone.status_code == 404, gone.text  # deleted from the registry by digest
    assert crane.digest(f"{door.host}/{ns}/app@{shared.digest}").returncode != 0
    pulled = crane.pull(f"{door.host}/{ns}/app:v3", tmp_path / "pulled")
    assert pulled.returncode == 0, pulled.stderr
    # The stream stays (v3): the quota counting streams is unaffected.
    assert used(stack, ns) == "1"

    again = crane.run("delete", f"{door.host}/{ns}/app:v2")
    assert again.returncode != 0 and "MANIFEST_UNKNOWN" in again.stderr, again.stderr


def test_an_image_another_stream_references_stays(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    login(crane, door, account(stack, ns, "builder", "registry-editor"))
    directory, image = image_dir(tmp_path, 1100, seed=63)
    for repository in ("app", "other"):
        pushed = crane.push(directory, f"{door.host}/{ns}/{repository}:v1")
        assert pushed.returncode == 0, pushed.stderr
    assert crane.run("delete", f"{door.host}/{ns}/app:v1").returncode == 0
    assert history(stack, ns, "app") == {}
    assert has_image(stack, image.digest)
    assert crane.digest(f"{door.host}/{ns}/other:v1").stdout.strip() == image.digest
    pulled = crane.pull(f"{door.host}/{ns}/other:v1", tmp_path / "pulled")
    assert pulled.returncode == 0, pulled.stderr


def test_a_tag_the_spec_names_leaves_the_spec_too(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    """As OpenShift deletes an ImageStreamTag: a spec tag left behind would still count
    against alauda.io/image-tags and keep the registry's tag."""
    login(crane, door, account(stack, ns, "builder", "registry-editor"))
    directory, _ = image_dir(tmp_path, 700, seed=64)
    assert crane.push(directory, f"{door.host}/{ns}/app:v1").returncode == 0
    spec = json.dumps({"spec": {"tags": [{"name": "v1"}, {"name": "planned"}]}})
    stack.kubectl("patch", "imagestream", "app", "-n", ns, "--type=merge", "-p", spec)
    assert crane.run("delete", f"{door.host}/{ns}/app:v1").returncode == 0
    stream = imagestream(stack, ns, "app")
    assert [t["name"] for t in stream["spec"]["tags"]] == ["planned"]
    assert history(stack, ns, "app") == {}
    # A tag only the spec names, with nothing pushed: deleted the same way.
    assert crane.run("delete", f"{door.host}/{ns}/app:planned").returncode == 0
    assert not imagestream(stack, ns, "app")["spec"].get("tags")


def test_a_manifest_deleted_by_digest_leaves_every_tag_and_is_answered_202(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    token = account(stack, ns, "builder", "registry-editor")
    login(crane, door, token)
    upstream = Upstream(door)
    directory, image = image_dir(tmp_path, 1300, seed=65)
    kept_dir, kept = image_dir(tmp_path, 800, seed=66)
    for source, tag in ((directory, "v1"), (directory, "v2"), (kept_dir, "v3")):
        assert crane.push(source, f"{door.host}/{ns}/app:{tag}").returncode == 0
    answer = Registry(door, token)("DELETE", f"/v2/{ns}/app/manifests/{image.digest}")
    assert answer.status_code == 202, answer.text
    assert history(stack, ns, "app") == {"v3": [kept.digest]}
    assert not has_image(stack, image.digest)
    assert registry_tags(upstream, f"{ns}/app") == ["v3"]
    assert crane.digest(f"{door.host}/{ns}/app@{image.digest}").returncode != 0
    # crane's own delete by digest: the last one, the stream stays empty.
    assert crane.run("delete", f"{door.host}/{ns}/app@{kept.digest}").returncode == 0
    assert history(stack, ns, "app") == {}
    unknown = Registry(door, token)("DELETE", f"/v2/{ns}/app/manifests/{kept.digest}")
    assert (unknown.status_code, unknown.json()["errors"][0]["code"]) == (404, "MANIFEST_UNKNOWN")


def test_a_digest_delete_never_rolls_a_tag_back_to_its_previous_image(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    token = account(stack, ns, "builder", "registry-editor")
    login(crane, door, token)
    old_dir, old = image_dir(tmp_path, 900, seed=71)
    new_dir, new = image_dir(tmp_path, 700, seed=72)
    for source in (old_dir, new_dir):
        assert crane.push(source, f"{door.host}/{ns}/app:v1").returncode == 0
    answer = Registry(door, token)("DELETE", f"/v2/{ns}/app/manifests/{new.digest}")
    assert answer.status_code == 202, answer.text
    assert history(stack, ns, "app") == {}
    assert crane.digest(f"{door.host}/{ns}/app:v1").returncode != 0
    assert not has_image(stack, old.digest)


def test_a_blob_a_recorded_image_holds_is_refused_until_the_image_goes(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    token = account(stack, ns, "builder", "registry-editor")
    login(crane, door, token)
    directory, image = image_dir(tmp_path, 1000, seed=67)
    assert crane.push(directory, f"{door.host}/{ns}/app:v1").returncode == 0
    registry = Registry(door, token)
    layer = image.layers[0].digest
    refused = registry("DELETE", f"/v2/{ns}/app/blobs/{layer}")
    assert refused.status_code == 403, refused.text
    error = refused.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert f"held by image {image.digest}" in error["message"]
    assert "would break pulls" in error["message"]
    assert registry("GET", f"/v2/{ns}/app/blobs/{layer}").status_code == 200
    assert crane.run("delete", f"{door.host}/{ns}/app:v1").returncode == 0
    # Nothing records it now: forwarded, and the registry (deletes enabled) unlinks it.
    forwarded = registry("DELETE", f"/v2/{ns}/app/blobs/{layer}")
    assert forwarded.status_code == 202, forwarded.text
    assert registry("HEAD", f"/v2/{ns}/app/blobs/{layer}").status_code == 404


def test_a_viewer_may_not_delete_and_no_credentials_is_401(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    login(crane, door, account(stack, ns, "builder", "registry-editor"))
    directory, image = image_dir(tmp_path, 600, seed=68)
    assert crane.push(directory, f"{door.host}/{ns}/app:v1").returncode == 0
    login(crane, door, account(stack, ns, "reader", "registry-viewer"))
    refused = crane.run("delete", f"{door.host}/{ns}/app:v1")
    assert refused.returncode != 0
    assert "DENIED" in refused.stderr, refused.stderr
    assert "needs delete on imagestreams/layers" in refused.stderr
    crane.forget_credentials()
    anonymous = crane.run("delete", f"{door.host}/{ns}/app:v1")
    assert anonymous.returncode != 0
    assert "UNAUTHORIZED" in anonymous.stderr or "401" in anonymous.stderr, anonymous.stderr
    assert history(stack, ns, "app") == {"v1": [image.digest]}
    assert has_image(stack, image.digest)
