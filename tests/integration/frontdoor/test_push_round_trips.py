"""A manifest PUT's round trips to the API server, cut (issue 21), against the real API
server: a push to a repository this worker wrote last writes its tag from that write's
answer instead of reading the stream, and an Image the cache holds is created once, after
its tag. What each cut could break is checked here: another writer's tags are never lost
or left uncounted, and the Image a tag names is there after the push."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import pytest

from localcluster.crane import Crane
from localcluster.frontdoor import FRONTDOOR_ACCOUNT, LocalFrontDoor
from localcluster.ocilayout import OCI_MANIFEST
from quota.pushrecords import image_object_name
from tests.integration.support.audit import audit_events
from tests.integration.support.cluster import CACHE_DEADLINE, ClusterEnv
from tests.integration.support.objects import history, stream_limits
from tests.integration.support.registry import Registry, account, image_dir, login

pytestmark = pytest.mark.local_only

PUSHES = 5
"""Sequential pushes to one repository over one connection (so one worker)."""


def manifest_of(directory: Path, digest: str) -> bytes:
    return (directory / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def put(registry: Registry, repository: str, tag: str, body: bytes) -> int:
    answer = registry(
        "PUT",
        f"/v2/{repository}/manifests/{tag}",
        data=body,
        headers={"Content-Type": OCI_MANIFEST},
    )
    return answer.status_code


def front_door_requests(stack: ClusterEnv, namespace: str, verb: str, resource: str) -> int:
    """The front door's completed requests of ``verb`` on ``resource`` in ``namespace``
    ("" for a cluster-wide resource: Images)."""
    assert stack.stack is not None
    return len(
        [
            event
            for event in audit_events(stack.stack.cp.audit_log, FRONTDOOR_ACCOUNT)
            for ref in (event.get("objectRef", {}),)  # none: an issuer-key read
            if event["stage"] == "ResponseComplete"
            and event["verb"] == verb
            and ref.get("resource") == resource
            and (ref.get("namespace") or "") == namespace
            and "subresource" not in ref
        ]
    )


def recorded(stack: ClusterEnv, namespace: str, tag: str) -> bool:
    return tag in history(stack, namespace, "app")


def test_sequential_pushes_read_the_stream_live_once_and_create_the_image_once_each(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    token = account(stack, ns, "builder", "registry-editor")
    login(crane, door, token)
    directory, image = image_dir(tmp_path, 100, seed=31)
    assert crane.push(directory, f"{door.host}/{ns}/app:seed").returncode == 0
    body = manifest_of(directory, image.digest)
    registry = Registry(door, token)
    reads_before = front_door_requests(stack, ns, "get", "imagestreams")
    creates_before = front_door_requests(stack, "", "create", "images")
    for n in range(PUSHES):
        assert put(registry, f"{ns}/app", f"t{n}", body) == 201
        # The next push comes once the API server shows this one (a kubectl call, far
        # longer than a watch event takes to reach the front door's cache).
        stack.wait(partial(recorded, stack, ns, f"t{n}"), timeout=CACHE_DEADLINE, what="the tag")
    assert sorted(history(stack, ns, "app")) == ["seed", *(f"t{n}" for n in range(PUSHES))]
    reads = front_door_requests(stack, ns, "get", "imagestreams") - reads_before
    # The first PUT on this connection's worker reads the stream crane's push made; each
    # later one writes from the last write's answer. Before: one read each.
    assert reads <= 2, f"{reads} live reads of the stream for {PUSHES} pushes"
    creates = front_door_requests(stack, "", "create", "images") - creates_before
    # One create each, after its tag (the cache holds the Image crane's push made); one
    # more is a cache that had not caught up with that push yet. Before: two each.
    assert creates <= PUSHES + 1, f"{creates} Image creates for {PUSHES} pushes of one Image"


def test_a_tag_written_by_someone_else_since_the_last_push_is_kept_and_counted(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    """The stream the front door remembers from its own write is stale once another
    writer adds a tag: the next push must neither drop that tag nor be judged without it
    (the limit allows two tags; the push would be the third)."""
    stack.apply(stream_limits(**{"alauda.io/image-tags": "2"}), "-n", ns)
    token = account(stack, ns, "builder", "registry-editor")
    login(crane, door, token)
    directory, image = image_dir(tmp_path, 100, seed=32)
    assert crane.push(directory, f"{door.host}/{ns}/app:v1").returncode == 0
    body = manifest_of(directory, image.digest)
    registry = Registry(door, token)
    assert put(registry, f"{ns}/app", "v1", body) == 201  # this worker remembers the stream
    other = {"tag": "other", "items": [{"image": image.digest, "created": "2026-12-08T00:00:00Z",
                                       "dockerImageReference": f"x/{ns}/app@{image.digest}",
                                       "generation": 1}]}  # fmt: skip
    patch = [{"op": "add", "path": "/status/tags/-", "value": other}]
    stack.kubectl(
        "patch", "imagestream", "app", "-n", ns, "--subresource=status", "--type=json",
        "-p", json.dumps(patch),
    )  # fmt: skip
    denied = registry(
        "PUT",
        f"/v2/{ns}/app/manifests/v2",
        data=body,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert denied.status_code == 403, denied.text
    assert "(3 > 2)" in denied.text
    assert history(stack, ns, "app") == {"v1": [image.digest], "other": [image.digest]}


def test_an_image_deleted_since_it_was_cached_is_recorded_again_by_the_next_push(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    """A prune may delete an Image the front door's cache still holds: the push that tags
    it saves it after its tag, so the tag never names an Image that is gone."""
    token = account(stack, ns, "builder", "registry-editor")
    login(crane, door, token)
    directory, image = image_dir(tmp_path, 100, seed=33)
    assert crane.push(directory, f"{door.host}/{ns}/app:v1").returncode == 0
    body = manifest_of(directory, image.digest)
    name = image_object_name(image.digest)
    stack.kubectl("delete", "image", name)
    assert put(Registry(door, token), f"{ns}/app", "v2", body) == 201
    assert stack.kubectl_json("get", "image", name)["metadata"]["name"] == name
    assert history(stack, ns, "app") == {"v1": [image.digest], "v2": [image.digest]}
