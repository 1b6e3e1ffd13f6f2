"""ResourceQuota ``alauda.io/image-storage`` on real pushes with a real client (crane)
through the front door before a real CNCF registry: a push is charged its new bytes only,
denied past the quota with native quota's words in the client's own output, never
over-admitted by concurrent pushes, and its storage is freed at once by a delete."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import pytest

from localcluster.crane import Crane
from localcluster.frontdoor import LocalFrontDoor
from localcluster.quotarelease import release_seconds
from quota.quantity import format_bytes, parse_quantity
from tests.integration.support.cluster import RELEASE_DEADLINE, ClusterEnv
from tests.integration.support.objects import quota
from tests.integration.support.registry import account, image_dir, login

pytestmark = pytest.mark.local_only

S = "alauda.io/image-storage"
RELEASE_AT_ONCE_SECONDS = 2.0
"""The issue's bound for freed quota to show (native quota: 0.06 s here)."""
CONCURRENT_PUSHES = 6
ROOM_FOR = 3


def storage_used(stack: ClusterEnv, ns: str) -> int | None:
    obj = stack.kubectl_json("get", "resourcequota", "space", "-n", ns)
    value = (obj.get("status") or {}).get("used", {}).get(S)
    return None if value is None else int(parse_quantity(value))


def counted(stack: ClusterEnv, ns: str, hard: str) -> None:
    stack.apply(quota({S: hard}, name="space"), "-n", ns)
    stack.wait(lambda: storage_used(stack, ns) == 0, timeout=30, what="storage usage counted")


def test_a_push_past_the_storage_quota_is_denied_in_the_clients_output(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    counted(stack, ns, "16Ki")
    login(crane, door, account(stack, ns, "builder", "registry-editor"))
    first_dir, first = image_dir(tmp_path, 6000, 4000, seed=1)
    pushed = crane.push(first_dir, f"{door.host}/{ns}/app:v1")
    assert pushed.returncode == 0, pushed.stderr
    assert storage_used(stack, ns) == first.size, "charged the push's bytes"
    second_dir, second = image_dir(tmp_path, 7000, seed=2)
    denied = crane.push(second_dir, f"{door.host}/{ns}/app:v2")
    assert denied.returncode != 0
    assert (
        f"exceeded quota: space, requested: {S}={format_bytes(second.size)}, "
        f"used: {S}={format_bytes(first.size)}, limited: {S}=16Ki"
    ) in denied.stderr, denied.stderr
    assert "DENIED" in denied.stderr
    # What the namespace holds already costs nothing: another tag, another repository.
    for ref in ("app:again", "copy:v1"):
        again = crane.push(first_dir, f"{door.host}/{ns}/{ref}")
        assert again.returncode == 0, again.stderr
    assert storage_used(stack, ns) == first.size


def test_concurrent_pushes_never_take_more_room_than_there_is(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    layouts = [image_dir(tmp_path, 5000, seed=10 + n) for n in range(CONCURRENT_PUSHES)]
    size = max(image.size for _, image in layouts)
    assert min(image.size for _, image in layouts) == size, "equal sizes: room for exactly 3"
    counted(stack, ns, str(ROOM_FOR * size + size - 1))
    login(crane, door, account(stack, ns, "builder", "registry-editor"))

    def push(n: int) -> bool:
        result = crane.push(layouts[n][0], f"{door.host}/{ns}/app{n}:v1")
        assert result.returncode == 0 or "exceeded quota: space" in result.stderr, result.stderr
        return result.returncode == 0

    with concurrent.futures.ThreadPoolExecutor(CONCURRENT_PUSHES) as pool:
        admitted = sum(pool.map(push, range(CONCURRENT_PUSHES)))
    assert admitted == ROOM_FOR
    assert storage_used(stack, ns) == ROOM_FOR * size


def test_deleting_the_last_stream_holding_an_image_frees_its_storage_at_once(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    login(crane, door, account(stack, ns, "builder", "registry-editor"))
    directory, image = image_dir(tmp_path, 3000, seed=3)
    for repository in ("app", "copy"):
        assert crane.push(directory, f"{door.host}/{ns}/{repository}:v1").returncode == 0
    # The quota comes after the pushes: its first usage is the controller's recount, so
    # once it reads the image's size the controller has seen both streams hold it.
    stack.apply(quota({S: "1Mi"}, name="space"), "-n", ns)
    stack.wait(
        lambda: storage_used(stack, ns) == image.size, timeout=30, what="the storage recount"
    )
    stack.kubectl("delete", "imagestream", "copy", "-n", ns)  # "app" still holds the blobs
    assert storage_used(stack, ns) == image.size
    seconds = release_seconds(
        stack.api,
        ns,
        "space",
        S,
        "0",
        lambda: stack.kubectl("delete", "imagestream", "app", "-n", ns),
        timeout=RELEASE_DEADLINE,
    )
    assert seconds < RELEASE_AT_ONCE_SECONDS


def test_a_storage_quota_not_counted_yet_denies_a_push_retryably_until_it_is(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    """Unknown is not zero: counted as zero, a namespace already holding more than the
    quota would let the push in."""
    assert stack.stack is not None
    login(crane, door, account(stack, ns, "builder", "registry-editor"))
    held_dir, _ = image_dir(tmp_path, 9000, seed=20)
    assert crane.push(held_dir, f"{door.host}/{ns}/app:v1").returncode == 0
    new_dir, _ = image_dir(tmp_path, 3000, seed=21)
    stack.stack.stop_controller()
    try:
        stack.apply(quota({S: "8Ki"}, name="space"), "-n", ns)
        unknown = f"status unknown for quota: space, resources: {S}"
        result = stack.wait(
            lambda: (
                (r := crane.push(new_dir, f"{door.host}/{ns}/app:v2")).returncode != 0
                and unknown in r.stderr
                and r
            ),
            timeout=60,
            what="the front door's caches to see the quota",
        )
        assert "UNAVAILABLE" in result.stderr, result.stderr
    finally:
        stack.stack.start_controller()
    stack.wait(lambda: storage_used(stack, ns) is not None, timeout=30, what="the recount")
    denied = crane.push(new_dir, f"{door.host}/{ns}/app:v2")
    assert "exceeded quota: space" in denied.stderr, denied.stderr
