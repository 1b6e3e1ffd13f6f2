"""Manifest reads and tag lists through the front door, against the real registry and API
server: only what the Image API records for a repository is served (issue 17, items 1
and 6), and every pull of something recorded still works."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from localcluster.crane import Crane
from localcluster.frontdoor import LocalFrontDoor
from localcluster.ocilayout import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, random_layers, write_index
from localcluster.stack import CONTROLLER_ACCOUNT
from quota.pushrecords import image_object_name
from tests.integration.support.audit import DECISION, access_of, audit_events
from tests.integration.support.cluster import CACHE_DEADLINE, ClusterEnv
from tests.integration.support.objects import history, image_limit, quota, used
from tests.integration.support.registry import (
    Registry,
    Upstream,
    account,
    image_dir,
    login,
    sha256,
)

pytestmark = pytest.mark.local_only

LAYER_BYTES = 3 * 1024 * 1024
"""The issue's reproduction: a 3 MiB layer, three times the namespace's 1Mi image limit."""


def test_a_manifest_uploaded_as_a_blob_is_never_served(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    """The issue's reproduction: config, a 3 MiB layer and the manifest JSON itself as
    plain blobs, in a repository with no ImageStream, in a namespace at quota whose image
    limit is 1Mi. The blobs go to the registry directly: the front door's own upload path
    is item 4's to bound, and whatever way they got there, nothing unrecorded is served."""
    stack.apply(quota({"alauda.io/imagestreams": "0"}), "-n", ns)
    stack.apply(image_limit("1Mi"), "-n", ns)
    stack.wait(lambda: used(stack, ns) == "0", timeout=CACHE_DEADLINE, what="usage counted")
    repository = f"{ns}/sneak"
    upstream = Upstream(door)
    layer = random.Random(17).randbytes(LAYER_BYTES)
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {}}).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": sha256(layer), "size": len(layer)}],
        }
    ).encode()
    for blob in (config, layer, manifest):
        upstream.upload(repository, blob)
    digest = sha256(manifest)
    # One blob HEAD is what filled distribution's blob-descriptor cache with it.
    viewer = account(stack, ns, "reader", "registry-viewer")
    through_door = Registry(door, viewer)
    assert through_door("HEAD", f"/v2/{repository}/blobs/{digest}").status_code == 200
    assert upstream("HEAD", f"/v2/{repository}/blobs/{digest}").status_code == 200

    accept = {"Accept": OCI_MANIFEST}
    read = through_door("GET", f"/v2/{repository}/manifests/{digest}", headers=accept)
    assert read.status_code == 404, read.text
    assert read.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    head = through_door("HEAD", f"/v2/{repository}/manifests/{digest}", headers=accept)
    assert head.status_code == 404
    # The registry itself no longer takes a linked blob for a manifest revision.
    direct = upstream("GET", f"/v2/{repository}/manifests/{digest}", headers=accept)
    assert direct.status_code == 404, direct.text
    login(crane, door, viewer)
    pulled = crane.pull(f"{door.host}/{repository}@{digest}", tmp_path / "pulled")
    assert pulled.returncode != 0
    assert "MANIFEST_UNKNOWN" in pulled.stderr, pulled.stderr
    assert stack.kubectl("get", "imagestream", "-n", ns, "-o", "name").stdout.strip() == ""
    assert stack.kubectl("get", "image", image_object_name(digest), check=False).returncode != 0


def test_every_recorded_pull_still_works(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    """By tag, by digest, an index and its children, and a push by digest: each read
    right after its push (before any cache could have caught up), and the tag list is
    exactly the stream's."""
    login(crane, door, account(stack, ns, "builder", "registry-editor"))
    single_dir, single = image_dir(tmp_path, 1500, seed=31)
    assert crane.push(single_dir, f"{door.host}/{ns}/app:v1").returncode == 0
    assert crane.digest(f"{door.host}/{ns}/app:v1").stdout.strip() == single.digest
    by_tag = crane.pull(f"{door.host}/{ns}/app:v1", tmp_path / "by-tag")
    assert by_tag.returncode == 0, by_tag.stderr
    by_digest = crane.pull(f"{door.host}/{ns}/app@{single.digest}", tmp_path / "by-digest")
    assert by_digest.returncode == 0, by_digest.stderr

    index_dir = tmp_path / "index"
    index = write_index(index_dir, [random_layers([700], seed=32), random_layers([900], seed=33)])
    pushed = crane.push(index_dir, f"{door.host}/{ns}/multi:v1")
    assert pushed.returncode == 0, pushed.stderr
    assert crane.digest(f"{door.host}/{ns}/multi:v1").stdout.strip() == index.digest
    for child in index.children:
        fetched = crane.manifest(f"{door.host}/{ns}/multi@{child.digest}")
        assert fetched.returncode == 0, fetched.stderr
    # The same index tagged in a second repository: its children were pushed to the
    # first (their Images name it), and are served here as children of a recorded index.
    copied = crane.copy(f"{door.host}/{ns}/multi:v1", f"{door.host}/{ns}/copy:v1")
    assert copied.returncode == 0, copied.stderr
    for child in index.children:
        fetched = crane.manifest(f"{door.host}/{ns}/copy@{child.digest}")
        assert fetched.returncode == 0, fetched.stderr

    digest_dir, by_digest_only = image_dir(tmp_path, 1100, seed=34)
    ref = f"{door.host}/{ns}/app@{by_digest_only.digest}"
    assert crane.push(digest_dir, ref).returncode == 0
    only = crane.pull(ref, tmp_path / "digest-only")
    assert only.returncode == 0, only.stderr

    listed = crane.run("ls", f"{door.host}/{ns}/app")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["v1"]


REFUSED_TAG = "refused"
"""The tag the test's admission policy refuses in the stream's status (step 5)."""


def refuse_tag_policy(namespace: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ValidatingAdmissionPolicy and its binding refusing, in ``namespace``, any
    ImageStream write whose status records ``REFUSED_TAG``, and the create of one named
    ``probe`` (to see it in force): the API server's refusal of a push's tag event after
    its Image was saved, as our webhook's is when a racing push took the last tag."""
    name = f"refuse-tag-{namespace}"
    tags = "object.status.tags"
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["image.alauda.io"],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["imagestreams", "imagestreams/status"],
                    }
                ]
            },
            "validations": [
                {"expression": "object.metadata.name != 'probe'", "message": "probe refused"},
                {
                    "expression": f"!has(object.status) || !has({tags}) || "
                    f"{tags}.all(t, t.tag != '{REFUSED_TAG}')",
                    "message": f"tag {REFUSED_TAG} refused by the test's policy",
                },
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
            },
        },
    }
    return policy, binding


def test_a_tag_push_refused_at_its_tag_leaves_its_digest_unserved(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    """Review B1: the push's Image is saved (step 4) before the API server refuses its tag
    event (step 5); its manifest is in the registry, untagged, and must not be served by
    digest, though the Image names this repository. The stream exists (an earlier push),
    so nothing but the read rule stands between that digest and a reader."""
    login(crane, door, account(stack, ns, "builder", "registry-editor"))
    kept_dir, kept = image_dir(tmp_path, 1200, seed=41)
    assert crane.push(kept_dir, f"{door.host}/{ns}/app:v1").returncode == 0
    policy, binding = refuse_tag_policy(ns)
    probe = {
        "apiVersion": "image.alauda.io/v1",
        "kind": "ImageStream",
        "metadata": {"name": "probe"},
    }
    try:
        stack.apply(policy)
        stack.apply(binding)
        stack.wait(
            lambda: stack.apply(probe, "-n", ns, "--dry-run=server", check=False).returncode != 0,
            timeout=CACHE_DEADLINE,
            what="the admission policy in force",
        )
        refused_dir, refused = image_dir(tmp_path, 1300, seed=42)
        pushed = crane.push(refused_dir, f"{door.host}/{ns}/app:{REFUSED_TAG}")
        assert pushed.returncode != 0
        assert "DENIED" in pushed.stderr and "refused by the test's policy" in pushed.stderr
    finally:
        stack.kubectl("delete", "validatingadmissionpolicybinding", binding["metadata"]["name"])
        stack.kubectl("delete", "validatingadmissionpolicy", policy["metadata"]["name"])
    # The finding's state: the Image saved, naming this repository, the tag not recorded.
    image = stack.kubectl_json("get", "image", image_object_name(refused.digest))
    assert image["dockerImageReference"].endswith(f"/{ns}/app@{refused.digest}")
    assert REFUSED_TAG not in history(stack, ns, "app")

    viewer = Registry(door, account(stack, ns, "reader", "registry-viewer"))
    accept = {"Accept": OCI_MANIFEST}
    read = viewer("GET", f"/v2/{ns}/app/manifests/{refused.digest}", headers=accept)
    assert read.status_code == 404, read.text
    assert read.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    assert (
        viewer("HEAD", f"/v2/{ns}/app/manifests/{refused.digest}", headers=accept).status_code
        == 404
    )
    # What the stream records is served as before.
    recorded = viewer("GET", f"/v2/{ns}/app/manifests/{kept.digest}", headers=accept)
    assert recorded.status_code == 200, recorded.text


def upstream_tags(upstream: Upstream, repository: str) -> list[str] | None:
    """The tags the registry itself has, None when it knows no such repository."""
    answer = upstream("GET", f"/v2/{repository}/tags/list")
    if answer.status_code == 404:
        return None
    assert answer.status_code == 200, answer.text
    return list(answer.json().get("tags") or [])


def test_a_deleted_streams_tags_leave_the_registry_and_are_never_listed(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    """Issue 17, item 6: after ``kubectl delete imagestream app``, the registry itself no
    longer has app:v1 (the controller's reconciler deleted the tag), the front door never
    lists nor serves it, and a tag removed from a live stream goes the same way."""
    assert stack.stack is not None
    login(crane, door, account(stack, ns, "builder", "registry-editor"))
    upstream = Upstream(door)
    directory, image = image_dir(tmp_path, 1200, seed=41)
    for ref in (f"{ns}/app:v1", f"{ns}/kept:v1", f"{ns}/kept:v2"):
        pushed = crane.push(directory, f"{door.host}/{ref}")
        assert pushed.returncode == 0, pushed.stderr
    assert upstream_tags(upstream, f"{ns}/app") == ["v1"]

    stack.kubectl("delete", "imagestream", "app", "-n", ns)
    listed = crane.run("ls", f"{door.host}/{ns}/app")
    assert listed.returncode != 0 and "v1" not in listed.stdout  # no stream: NAME_UNKNOWN
    assert crane.digest(f"{door.host}/{ns}/app:v1").returncode != 0
    stack.wait(
        lambda: not upstream_tags(upstream, f"{ns}/app"),
        timeout=CACHE_DEADLINE,
        what="the registry to lose the deleted stream's tag",
    )

    # A tag removed from a stream that stays: only that tag goes.
    index = next(
        i
        for i, t in enumerate(
            stack.kubectl_json("get", "imagestream", "kept", "-n", ns)["status"]["tags"]
        )
        if t["tag"] == "v2"
    )
    patch = json.dumps([{"op": "remove", "path": f"/status/tags/{index}"}])
    stack.kubectl(
        "patch", "imagestream", "kept", "-n", ns, "--subresource=status", "--type=json", "-p", patch
    )
    assert crane.run("ls", f"{door.host}/{ns}/kept").stdout.split() == ["v1"]
    stack.wait(
        lambda: upstream_tags(upstream, f"{ns}/kept") == ["v1"],
        timeout=CACHE_DEADLINE,
        what="the registry to lose the removed tag",
    )
    assert crane.digest(f"{door.host}/{ns}/kept:v1").stdout.strip() == image.digest
    # What the reconciler read (a live get before each delete) it was granted, nothing more.
    events = list(audit_events(stack.stack.cp.audit_log, CONTROLLER_ACCOUNT))
    gets = [e for e in events if str(access_of(e)) == "get imagestreams.image.alauda.io"]
    assert gets and all(e["annotations"].get(DECISION) != "forbid" for e in gets)
