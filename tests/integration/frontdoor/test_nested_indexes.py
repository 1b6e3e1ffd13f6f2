"""Image indexes of any depth with a real client (crane) through the real front door:
an index of indexes is judged child by child, recorded manifest by manifest, and pulled
back whole; a deeper one than the bound, or one whose grandchild breaks the image limit,
is refused with a message the client prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from frontdoor.pushes import MAX_INDEX_DEPTH
from localcluster.crane import Crane
from localcluster.frontdoor import LocalFrontDoor
from localcluster.ocilayout import Index, random_layers, wrap_index, write_index
from quota.pushrecords import image_object_name
from tests.integration.support.cluster import CACHE_DEADLINE, ClusterEnv
from tests.integration.support.objects import history, image_limit
from tests.integration.support.registry import account, login

pytestmark = pytest.mark.local_only


def two_indexes(directory: Path, sizes: tuple[int, int, int, int], seed: int) -> list[Index]:
    """Two multi-platform indexes in one layout, four images of these layer sizes."""
    first = write_index(
        directory, [random_layers([sizes[0]], seed=seed), random_layers([sizes[1]], seed=seed + 1)]
    )
    second = write_index(
        directory,
        [random_layers([sizes[2]], seed=seed + 2), random_layers([sizes[3]], seed=seed + 3)],
    )
    return [first, second]


def test_an_index_of_indexes_is_pushed_recorded_and_pulled_back(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    login(crane, door, account(stack, ns, "builder", "registry-editor"))
    directory = tmp_path / "nested"
    inner = two_indexes(directory, (300, 400, 500, 600), seed=71)
    outer = wrap_index(directory, [i.manifest for i in inner])
    pushed = crane.push(directory, f"{door.host}/{ns}/multi:v1")
    assert pushed.returncode == 0, pushed.stderr
    assert history(stack, ns, "multi") == {"v1": [outer.digest]}
    recorded = stack.kubectl_json("get", "image", image_object_name(outer.digest))
    assert [m["digest"] for m in recorded["dockerImageManifests"]] == [i.digest for i in inner]
    for index in inner:
        child = stack.kubectl_json("get", "image", image_object_name(index.digest))
        assert [m["digest"] for m in child["dockerImageManifests"]] == [
            image.digest for image in index.children
        ]
        for image in index.children:
            leaf = stack.kubectl_json("get", "image", image_object_name(image.digest))
            assert leaf["dockerImageMetadata"]["size"] == image.size
            # A grandchild is served by digest: its index is recorded.
            served = crane.digest(f"{door.host}/{ns}/multi@{image.digest}")
            assert served.stdout.strip() == image.digest, served.stderr
    # A copy: its manifests were marked for multi, so in copy a grandchild is served
    # only because the outer index, recorded there, names an index naming it.
    copied = crane.copy(f"{door.host}/{ns}/multi:v1", f"{door.host}/{ns}/copy:v1")
    assert copied.returncode == 0, copied.stderr
    grandchild = inner[1].children[0].digest
    served = crane.digest(f"{door.host}/{ns}/copy@{grandchild}")
    assert served.stdout.strip() == grandchild, served.stderr
    pulled = crane.pull(f"{door.host}/{ns}/multi:v1", tmp_path / "pulled")
    assert pulled.returncode == 0, pulled.stderr
    layout = json.loads((tmp_path / "pulled" / "index.json").read_text())
    assert [m["digest"] for m in layout["manifests"]] == [outer.digest]
    for index in inner:
        for image in index.children:
            blob = tmp_path / "pulled" / "blobs" / "sha256" / image.layers[0].digest[7:]
            assert blob.stat().st_size == image.layers[0].size


def test_an_index_deeper_than_the_bound_is_refused_naming_the_level(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    login(crane, door, account(stack, ns, "builder", "registry-editor"))
    directory = tmp_path / "deep"
    top = write_index(
        directory, [random_layers([100], seed=81), random_layers([100], seed=82)]
    ).manifest
    for _ in range(MAX_INDEX_DEPTH):  # MAX_INDEX_DEPTH + 1 levels in all
        top = wrap_index(directory, [top])
    result = crane.push(directory, f"{door.host}/{ns}/deep:v1")
    assert result.returncode != 0
    assert "MANIFEST_INVALID" in result.stderr, result.stderr
    assert (
        f"is an image index at level {MAX_INDEX_DEPTH + 1}: indexes may nest at most"
        f" {MAX_INDEX_DEPTH} levels deep here"
    ) in result.stderr
    assert "v1" not in history(stack, ns, "deep")


def test_a_grandchild_over_the_image_limit_denies_the_index(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, crane: Crane, tmp_path: Path
) -> None:
    login(crane, door, account(stack, ns, "builder", "registry-editor"))
    directory = tmp_path / "nested"
    inner = two_indexes(directory, (100, 200, 300, 6000), seed=91)
    wrap_index(directory, [i.manifest for i in inner])
    # Every manifest fits until the limit comes; then the index naming the big one at the
    # second level may not (its children are in the registry: only it is judged again).
    before = crane.push(directory, f"{door.host}/{ns}/multi:before")
    assert before.returncode == 0, before.stderr
    stack.apply(image_limit("4Ki"), "-n", ns)
    stack.wait(
        lambda: crane.push(directory, f"{door.host}/{ns}/multi:after").returncode != 0,
        timeout=CACHE_DEADLINE,
        what="the nested index to be denied once the limit is cached",
    )
    denied = crane.push(directory, f"{door.host}/{ns}/multi:after")
    assert "DENIED" in denied.stderr, denied.stderr
    assert "exceeds the maximum limit per alauda.io/Image" in denied.stderr
    assert set(history(stack, ns, "multi")) == {"before"}
