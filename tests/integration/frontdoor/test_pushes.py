"""Real pushes and pulls with a real OCI client (crane) through the front door, in front
of a real CNCF registry, against the real API server and our webhooks: the limits and
quota hold on every push, with the contract's message in the client's own output, and
the Image API records exactly what was pushed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import requests

from localcluster.crane import Crane
from localcluster.frontdoor import FRONTDOOR_ACCOUNT, LocalFrontDoor
from localcluster.metrics import metric_sum
from localcluster.ocilayout import (
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_MANIFEST,
    random_layers,
    write_image,
    write_index,
)
from localcluster.stack import RBAC_MANIFEST
from quota.pushrecords import image_object_name
from tests.integration.support.audit import DECISION, Access, access_of, audit_events, granted
from tests.integration.support.cluster import CACHE_DEADLINE, ClusterEnv
from tests.integration.support.objects import (
    history,
    image_limit,
    imagestream,
    quota,
    stream_limits,
    used,
)
from tests.integration.support.registry import Registry, account, image_dir, login, sha256

pytestmark = pytest.mark.local_only


def test_an_allowed_push_is_recorded_exactly_as_pushed(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    login(crane, door, account(stack, ns, "builder", "registry-editor"))
    directory, image = image_dir(tmp_path, 3000, 2000)
    result = crane.push(directory, f"{door.host}/{ns}/app:v1")
    assert result.returncode == 0, result.stderr
    assert history(stack, ns, "app") == {"v1": [image.digest]}
    item = imagestream(stack, ns, "app")["status"]["tags"][0]["items"][0]
    assert item["dockerImageReference"] == f"{door.host}/{ns}/app@{image.digest}"
    recorded = stack.kubectl_json("get", "image", image_object_name(image.digest))
    assert recorded["dockerImageMetadata"]["size"] == image.size
    assert recorded["dockerImageConfig"]["digest"] == image.config.digest
    assert [layer["name"] for layer in recorded["dockerImageLayers"]] == [
        layer.digest for layer in image.layers
    ]
    assert crane.digest(f"{door.host}/{ns}/app:v1").stdout.strip() == image.digest


def test_an_oversized_image_is_denied_with_the_contracts_message(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    stack.apply(image_limit("4Ki"), "-n", ns)
    login(crane, door, account(stack, ns, "builder", "registry-editor"))
    directory, _ = image_dir(tmp_path, 3000, 3000)
    result = crane.push(directory, f"{door.host}/{ns}/app:big")
    assert result.returncode != 0
    assert "DENIED" in result.stderr
    assert "exceeds the maximum limit per alauda.io/Image" in result.stderr, result.stderr
    assert 'set by LimitRange "image-limits"' in result.stderr
    assert stack.kubectl("get", "imagestream", "-n", ns, "-o", "name").stdout.strip() == ""


def test_a_third_tag_is_denied(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    stack.apply(stream_limits(**{"alauda.io/image-tags": "2"}), "-n", ns)
    login(crane, door, account(stack, ns, "builder", "registry-editor"))
    directory, image = image_dir(tmp_path, 100)
    for tag in ("a", "b"):
        assert crane.push(directory, f"{door.host}/{ns}/app:{tag}").returncode == 0
    stack.wait(lambda: len(history(stack, ns, "app")) == 2, timeout=CACHE_DEADLINE, what="two tags")
    result = crane.push(directory, f"{door.host}/{ns}/app:c")
    assert result.returncode != 0
    assert "alauda.io/image-tags exceeds the maximum limit" in result.stderr, result.stderr
    assert "(3 > 2)" in result.stderr
    assert history(stack, ns, "app") == {"a": [image.digest], "b": [image.digest]}


def test_a_new_repository_past_the_quota_is_denied_and_counted_when_allowed(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    stack.apply(quota({"alauda.io/imagestreams": "1"}), "-n", ns)
    stack.wait(lambda: used(stack, ns) == "0", timeout=CACHE_DEADLINE, what="usage counted")
    login(crane, door, account(stack, ns, "builder", "registry-editor"))
    directory, _ = image_dir(tmp_path, 100)
    assert crane.push(directory, f"{door.host}/{ns}/first:v1").returncode == 0
    assert used(stack, ns) == "1"
    result = crane.push(directory, f"{door.host}/{ns}/second:v1")
    assert result.returncode != 0
    assert "exceeded quota: images" in result.stderr, result.stderr
    assert "limited: alauda.io/imagestreams=1" in result.stderr
    names = stack.kubectl("get", "imagestream", "-n", ns, "-o", "name").stdout.split()
    assert names == ["imagestream.image.alauda.io/first"]
    # The repository the quota counts takes new tags: only new repositories are charged.
    more = crane.push(directory, f"{door.host}/{ns}/first:v2")
    assert more.returncode == 0, more.stderr


def test_a_digest_only_push_is_checked_too(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    stack.apply(image_limit("4Ki"), "-n", ns)
    login(crane, door, account(stack, ns, "builder", "registry-editor"))
    small_dir, small = image_dir(tmp_path, 100, seed=2)
    big_dir, big = image_dir(tmp_path, 5000, seed=3)
    ok = crane.push(small_dir, f"{door.host}/{ns}/app@{small.digest}")
    assert ok.returncode == 0, ok.stderr
    denied = crane.push(big_dir, f"{door.host}/{ns}/app@{big.digest}")
    assert denied.returncode != 0
    assert "exceeds the maximum limit per alauda.io/Image" in denied.stderr, denied.stderr
    assert stack.kubectl_json("get", "image", image_object_name(small.digest))
    missing = stack.kubectl("get", "image", image_object_name(big.digest), check=False)
    assert missing.returncode != 0


def test_an_index_whose_child_exceeds_the_limit_is_denied(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    login(crane, door, account(stack, ns, "builder", "registry-editor"))
    directory = tmp_path / "index"
    index = write_index(directory, [random_layers([100], seed=4), random_layers([6000], seed=5)])
    # Each child fits until the limit comes; then the index naming the big one may not
    # (the children are in the registry already: only the index is judged again).
    pushed = crane.push(directory, f"{door.host}/{ns}/multi:before")
    assert pushed.returncode == 0, pushed.stderr
    stack.apply(image_limit("4Ki"), "-n", ns)
    stack.wait(
        lambda: crane.push(directory, f"{door.host}/{ns}/multi:after", index=True).returncode != 0,
        timeout=CACHE_DEADLINE,
        what="the index to be denied once the limit is cached",
    )
    result = crane.push(directory, f"{door.host}/{ns}/multi:after")
    assert "exceeds the maximum limit per alauda.io/Image" in result.stderr, result.stderr
    assert set(history(stack, ns, "multi")) == {"before"}
    recorded = stack.kubectl_json("get", "image", image_object_name(index.digest))
    assert [m["digest"] for m in recorded["dockerImageManifests"]] == [
        child.digest for child in index.children
    ]


def test_a_viewer_pulls_but_may_not_push(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    editor = account(stack, ns, "builder", "registry-editor")
    viewer = account(stack, ns, "reader", "registry-viewer")
    directory, image = image_dir(tmp_path, 1500)
    login(crane, door, editor)
    assert crane.push(directory, f"{door.host}/{ns}/app:v1").returncode == 0
    login(crane, door, viewer)
    pulled = crane.pull(f"{door.host}/{ns}/app:v1", tmp_path / "pulled")
    assert pulled.returncode == 0, pulled.stderr
    index = json.loads((tmp_path / "pulled" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == image.digest
    refused = crane.push(directory, f"{door.host}/{ns}/app:v2")
    assert refused.returncode != 0
    assert "DENIED" in refused.stderr, refused.stderr
    assert "needs update on imagestreams/layers" in refused.stderr


def test_no_credentials_is_401_and_no_binding_is_403(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    crane.forget_credentials()
    anonymous = crane.digest(f"{door.host}/{ns}/app:v1")
    assert anonymous.returncode != 0
    assert "UNAUTHORIZED" in anonymous.stderr or "401" in anonymous.stderr, anonymous.stderr
    # Every ServiceAccount may pull its own namespace's repositories (the controller's
    # registry-image-pullers): the stranger is another namespace's.
    elsewhere = f"{ns}-elsewhere"
    stack.kubectl("create", "namespace", elsewhere)
    try:
        login(crane, door, account(stack, elsewhere, "stranger", None))
        stranger = crane.digest(f"{door.host}/{ns}/app:v1")
        assert stranger.returncode != 0 and "DENIED" in stranger.stderr, stranger.stderr
    finally:
        stack.kubectl("delete", "namespace", elsewhere, "--wait=false", check=False)


def put_manifest(door: LocalFrontDoor, token: str, repository: str, tag: str, body: bytes) -> Any:
    return requests.put(
        f"{door.url}/v2/{repository}/manifests/{tag}",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": OCI_MANIFEST},
        verify=str(door.ca_file),
        timeout=30,
    )


def test_a_first_manifest_the_registry_refuses_leaves_no_stream_and_no_charge(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor
) -> None:
    """The stream (and its quota charge) comes before the registry's PUT, so that no push
    succeeds uncharged; when the registry then refuses (blobs never uploaded), the stream
    is deleted again."""
    stack.apply(quota({"alauda.io/imagestreams": "1"}), "-n", ns)
    stack.wait(lambda: used(stack, ns) == "0", timeout=CACHE_DEADLINE, what="usage counted")
    token = account(stack, ns, "builder", "registry-editor")
    missing = "sha256:" + "e" * 64
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": missing, "size": 2},
            "layers": [],
        }
    ).encode()
    response = put_manifest(door, token, f"{ns}/ghost", "v1", body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
    assert stack.kubectl("get", "imagestream", "-n", ns, "-o", "name").stdout.strip() == ""
    ghost = "sha256:" + hashlib.sha256(body).hexdigest()
    assert stack.kubectl("get", "image", image_object_name(ghost), check=False).returncode != 0
    stack.wait(lambda: used(stack, ns) == "0", timeout=60, what="the charge to be released")


def test_requests_bytes_and_denials_are_counted(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    def sample(name: str, **labels: str) -> float:
        page = requests.get(door.metrics_url, timeout=10).text
        return metric_sum([page], name, **labels)

    denials = sample("registry_v2_policy_frontdoor_push_denials_total", reason="size")
    received = sample("registry_v2_policy_frontdoor_bytes_total", direction="received")
    stack.apply(image_limit("8Ki"), "-n", ns)
    login(crane, door, account(stack, ns, "builder", "registry-editor"))
    small_dir, _ = image_dir(tmp_path, 4000, seed=11)
    # Each layer within the limit (a larger blob is cut while it uploads), the image not.
    big_dir, _ = image_dir(tmp_path, 5000, 4000, seed=12)
    assert crane.push(small_dir, f"{door.host}/{ns}/app:v1").returncode == 0
    assert crane.push(big_dir, f"{door.host}/{ns}/app:v2").returncode != 0
    assert sample("registry_v2_policy_frontdoor_push_denials_total", reason="size") == denials + 1
    assert sample("registry_v2_policy_frontdoor_bytes_total", direction="received") >= (
        received + 4000 + 5000 + 4000
    )
    assert (
        sample(
            "registry_v2_policy_frontdoor_requests_total",
            method="PUT",
            route="manifest",
            code="403",
        )
        >= 1
    )


def test_the_logs_are_json_and_never_hold_a_token(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    token = account(stack, ns, "builder", "registry-editor")
    login(crane, door, token)
    directory, _ = image_dir(tmp_path, 100, seed=13)
    assert crane.push(directory, f"{door.host}/{ns}/app:v1").returncode == 0
    process = door.process
    assert process is not None
    text = process.log_path.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    requests_logged = [line for line in lines if line.get("msg") == "registry request"]
    assert any(
        line["repository"] == f"{ns}/app" and line["route"] == "manifest" and line["status"] == 201
        for line in requests_logged
    )
    assert token not in text and token.split(".")[2] not in text


def descriptor(blob: Any) -> dict[str, Any]:
    return {"mediaType": blob.media_type, "digest": blob.digest, "size": blob.size}


def test_the_front_doors_grant_is_exactly_what_it_uses(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    """Every path that needs a right (a push to a new repository: caches, reviews,
    stream, Image, tag; a refused first manifest: the stream's deletion; a read of an
    unrecorded digest: the Image; deletes: the stream's spec, the Images listed, deleted
    and unmarked), then: no request
    of the front door's account was refused by RBAC, and every grant was used."""
    assert stack.stack is not None
    # A storage quota: the push's new bytes are charged on its status.
    stack.apply(quota({"alauda.io/image-storage": "1Mi"}, name="space"), "-n", ns)
    stack.wait(
        lambda: (
            "alauda.io/image-storage"
            in stack.kubectl_json("get", "resourcequota", "space", "-n", ns)
            .get("status", {})
            .get("used", {})
        ),
        timeout=30,
        what="storage usage counted",
    )
    token = account(stack, ns, "builder", "registry-editor")
    login(crane, door, token)
    directory, image = image_dir(tmp_path, 100, seed=14)
    assert crane.push(directory, f"{door.host}/{ns}/app:v1").returncode == 0
    # The blobs of app's image, in a repository that has none of them: the front door
    # knows their sizes (by digest), the registry refuses the manifest (blob unknown in
    # this repository) after the stream was created, and the stream is deleted.
    ghost = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(image.config)}
    ghost["layers"] = [descriptor(layer) for layer in image.layers]
    assert put_manifest(door, token, f"{ns}/ghost", "v1", json.dumps(ghost).encode()).ok is False
    # A read of a digest the stream's history lacks asks for its Image (a push by digest).
    unknown = Registry(door, token)("GET", f"/v2/{ns}/app/manifests/sha256:{'0' * 64}")
    assert unknown.status_code == 404
    # A delete of a tag the spec names too: the stream's status and spec written, its
    # candidate Image read, the Image nothing references any more deleted.
    spec = json.dumps({"spec": {"tags": [{"name": "v1"}]}})
    stack.kubectl("patch", "imagestream", "app", "-n", ns, "--type=merge", "-p", spec)
    assert crane.run("delete", f"{door.host}/{ns}/app:v1").returncode == 0
    # A delete by digest of a push by digest another stream also tags: the mark comes off.
    marked_dir, marked = image_dir(tmp_path, 100, seed=15)
    assert crane.push(marked_dir, f"{door.host}/{ns}/app@{marked.digest}").returncode == 0
    assert crane.push(marked_dir, f"{door.host}/{ns}/other:v1").returncode == 0
    assert crane.run("delete", f"{door.host}/{ns}/app@{marked.digest}").returncode == 0
    events = list(audit_events(stack.stack.cp.audit_log, FRONTDOOR_ACCOUNT))
    forbidden = [e for e in events if e["annotations"].get(DECISION) == "forbid"]
    refused = sorted({str(access_of(e)) for e in forbidden})
    assert not refused, f"the front door was refused by RBAC: {refused}"
    used_accesses = {str(access_of(e)) for e in events}
    expected = {str(a) for a in granted(RBAC_MANIFEST, FRONTDOOR_ACCOUNT)}
    # QuotaCharger._release: taking back the first charge when a later quota's write fails
    # needs two writers racing on two quotas at once; unit-tested with fakes.
    expected -= {str(Access("", "resourcequotas", "get"))}
    assert not expected - used_accesses, f"granted, never used: {sorted(expected - used_accesses)}"


def test_uploads_mounts_and_range_reads_work_as_the_spec_says(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor
) -> None:
    registry = Registry(door, account(stack, ns, "builder", "registry-editor"))
    blob = bytes(range(256)) * 4096  # 1 MiB
    # Monolithic: a session, then one PUT with the whole body and its digest (the spec's
    # single-POST form is optional; distribution answers it with a session, 202).
    session = registry("POST", f"/v2/{ns}/app/blobs/uploads/")
    assert session.status_code == 202, session.text
    location = session.headers["Location"]
    separator = "&" if "?" in location else "?"
    monolithic = registry(
        "PUT",
        f"{location}{separator}digest={sha256(blob)}",
        data=blob,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert monolithic.status_code == 201, monolithic.text
    assert monolithic.headers["Docker-Content-Digest"] == sha256(blob)
    # Chunked: POST, two PATCHes with Content-Range, then PUT with the digest.
    second = blob[::-1]
    started = registry("POST", f"/v2/{ns}/app/blobs/uploads/")
    assert started.status_code == 202
    location = started.headers["Location"]
    assert location.startswith("/v2/"), location  # relative: the next request comes back here
    half = len(second) // 2
    for start, part in ((0, second[:half]), (half, second[half:])):
        patched = registry(
            "PATCH",
            location,
            data=part,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{start}-{start + len(part) - 1}",
            },
        )
        assert patched.status_code == 202, patched.text
        location = patched.headers["Location"]
    separator = "&" if "?" in location else "?"
    done = registry("PUT", f"{location}{separator}digest={sha256(second)}")
    assert done.status_code == 201, done.text
    # Chunked transfer encoding, as docker push sends a layer: no Content-Length.
    third = blob[1:] + b"!"
    started = registry("POST", f"/v2/{ns}/app/blobs/uploads/")
    streamed = registry(
        "PATCH",
        started.headers["Location"],
        data=iter([third[:1000], third[1000:]]),  # a generator: requests sends it chunked
        headers={"Content-Type": "application/octet-stream"},
    )
    assert streamed.status_code == 202, streamed.text
    location = streamed.headers["Location"]
    separator = "&" if "?" in location else "?"
    assert registry("PUT", f"{location}{separator}digest={sha256(third)}").status_code == 201
    assert registry("GET", f"/v2/{ns}/app/blobs/{sha256(third)}").content == third
    # Range read and HEAD.
    ranged = registry(
        "GET", f"/v2/{ns}/app/blobs/{sha256(second)}", headers={"Range": "bytes=10-19"}
    )
    assert ranged.status_code == 206 and ranged.content == second[10:20]
    head = registry("HEAD", f"/v2/{ns}/app/blobs/{sha256(blob)}")
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(blob)
    # Cross-repository mount: from a repository the pusher may read, the blob is linked.
    mounted = registry(
        "POST", f"/v2/{ns}/other/blobs/uploads/?mount={sha256(blob)}&from={ns}%2Fapp"
    )
    assert mounted.status_code == 201, mounted.text
    assert registry("GET", f"/v2/{ns}/other/blobs/{sha256(blob)}").content == blob


def test_docker_schema_2_images_and_manifest_lists_are_judged_and_recorded_alike(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    login(crane, door, account(stack, ns, "builder", "registry-editor"))
    image_path = tmp_path / "docker-image"
    image = write_image(image_path, random_layers([1200, 800], seed=21), docker=True)
    pushed = crane.push(image_path, f"{door.host}/{ns}/legacy:v1")
    assert pushed.returncode == 0, pushed.stderr
    recorded = stack.kubectl_json("get", "image", image_object_name(image.digest))
    assert recorded["dockerImageManifestMediaType"] == DOCKER_MANIFEST
    assert recorded["dockerImageMetadata"]["size"] == image.size
    stack.apply(image_limit("4Ki"), "-n", ns)
    list_path = tmp_path / "docker-list"
    write_index(
        list_path,
        [random_layers([100], seed=22), random_layers([6000], seed=23)],
        docker=True,
    )
    stack.wait(
        lambda: crane.push(list_path, f"{door.host}/{ns}/legacy:multi").returncode != 0,
        timeout=CACHE_DEADLINE,
        what="the manifest list to be denied once the limit is cached",
    )
    denied = crane.push(list_path, f"{door.host}/{ns}/legacy:multi")
    assert "exceeds the maximum limit per alauda.io/Image" in denied.stderr, denied.stderr
    assert set(history(stack, ns, "legacy")) == {"v1"}


def test_a_mount_smuggled_in_a_form_body_reads_nothing_of_another_namespace(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor
) -> None:
    """distribution reads mount= and from= from a form body too (FormValue): the front
    door sends upload bodies as blob bytes, so only the query's mount, checked, counts."""
    victim_ns = f"{ns}-victim"
    stack.kubectl("create", "namespace", victim_ns)
    try:
        victim = Registry(door, account(stack, victim_ns, "owner", "registry-editor"))
        secret = b"victim's layer " * 1000
        started = victim("POST", f"/v2/{victim_ns}/app/blobs/uploads/")
        location = started.headers["Location"]
        separator = "&" if "?" in location else "?"
        stored = victim("PUT", f"{location}{separator}digest={sha256(secret)}", data=secret)
        assert stored.status_code == 201, stored.text
        attacker = Registry(door, account(stack, ns, "attacker", "registry-editor"))
        smuggled = attacker(
            "POST",
            f"/v2/{ns}/x/blobs/uploads/",
            data=f"mount={sha256(secret)}&from={victim_ns}/app",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert smuggled.status_code == 202  # a plain upload session, no mount
        leaked = attacker("GET", f"/v2/{ns}/x/blobs/{sha256(secret)}")
        assert leaked.status_code == 404 and secret not in leaked.content
    finally:
        stack.kubectl("delete", "namespace", victim_ns, "--wait=false", check=False)
