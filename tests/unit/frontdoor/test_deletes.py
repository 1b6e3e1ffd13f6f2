"""A delete's steps with the Image API and the registry faked: their order, what each
failure leaves, and what is refused."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from frontdoor.deleterecords import Conflict
from frontdoor.deletes import ManifestDeletes
from frontdoor.distribution import RegistryError
from frontdoor.records import RecordFailed
from frontdoor.upstream import UpstreamResponse
from quota.deletes import StreamChange, marked_for
from quota.imagerefs import image_digest, images_by_digest
from quota.measure import stream_image_digests
from quota.objects import Obj
from quota.pushrecords import ANNOTATION_PUSHED_BY_DIGEST
from quota.served import recorded_image

D = {name: f"sha256:{name * 64}"[:71] for name in "abcdefgh"}


def _image(digest: str, *, children: tuple[str, ...] = (), **more: Any) -> Obj:
    image: dict[str, Any] = {
        "metadata": {"name": digest.replace(":", "-"), "resourceVersion": "1", "uid": "u"},
        "dockerImageReference": f"r/ns/app@{digest}",
        **more,
    }
    if children:
        image["dockerImageManifests"] = [{"digest": c} for c in children]
    return image


class World:
    """The Image API, the front door's caches and the registry, recording every step in
    one list and every read of the API in another."""

    def __init__(self, streams: dict[str, Obj], images: list[Obj]) -> None:
        self.streams = streams
        self.image_list = images
        self.steps: list[str] = []
        self.reads: list[str] = []
        self.conflicts = 0
        self.registry_down = False
        self.cached: tuple[dict[str, Obj], list[Obj]] | None = None  # None: up to date
        self.stale_streams: dict[str, Obj] = {}

    def freeze_cache(self) -> None:
        """From now on the caches show the world as it is now: a watch that stopped."""
        self.cached = (copy.deepcopy(self.streams), copy.deepcopy(self.image_list))

    def _cached_streams(self) -> dict[str, Obj]:
        streams = self.streams if self.cached is None else self.cached[0]
        return {**streams, **self.stale_streams}

    def _cached_images(self) -> list[Obj]:
        return self.image_list if self.cached is None else self.cached[1]

    # Records
    def stream(self, namespace: str, name: str) -> Obj | None:
        self.reads.append(f"get stream {namespace}/{name}")
        found = self.streams.get(f"{namespace}/{name}")
        return copy.deepcopy(found) if found is not None else None

    # Writes
    def write(self, stream: Obj, change: StreamChange) -> str:
        if self.conflicts:
            self.conflicts -= 1
            raise Conflict("changed")
        key = f"{stream['metadata']['namespace']}/{stream['metadata']['name']}"
        if change.status is not None:
            self.streams[key]["status"] = change.status
            self.steps.append(f"status {key}")
        if change.spec is not None:
            self.streams[key]["spec"] = change.spec
            self.steps.append(f"spec {key}")
        meta = self.streams[key]["metadata"]
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)
        return str(meta["resourceVersion"])

    def streams_list(self) -> list[Obj]:
        self.reads.append("list streams")
        return copy.deepcopy(list(self.streams.values()))

    def image(self, digest: str) -> Obj | None:
        self.reads.append(f"get image {name(digest)}")
        found = [i for i in self.image_list if image_digest(i) == digest]
        return copy.deepcopy(found[0]) if found else None

    def delete_image(self, image: Obj) -> bool:
        self.steps.append(f"delete image {image['metadata']['name']}")
        self.image_list = [i for i in self.image_list if i["metadata"] != image["metadata"]]
        return True

    def drop_mark(self, image: Obj) -> None:
        self.steps.append(f"unmark {image['metadata']['name']}")

    # Cached
    def images_by_digest(self) -> Mapping[str, Obj]:
        return images_by_digest(self._cached_images())

    def marked(self, repository: str) -> list[str]:
        return sorted(marked_for(repository, self.images_by_digest()))

    def parents(self, digest: str) -> list[str]:
        return sorted(
            d
            for d, image in self.images_by_digest().items()
            if digest in recorded_image(image).children
        )

    def streams_naming(self, digests: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
        streams = self._cached_streams()
        return {
            digest: [
                tuple(key.split("/", 1))  # type: ignore[misc]
                for key, s in sorted(streams.items())
                if digest in stream_image_digests(s)
            ]
            for digest in digests
        }

    def wait_for_stream(
        self, namespace: str, name: str, resource_version: str, timeout: float
    ) -> bool:
        cached = self._cached_streams().get(f"{namespace}/{name}")
        version = cached["metadata"]["resourceVersion"] if cached else "0"
        return int(version) >= int(resource_version)

    # Registry
    def request(self, method: str, path: str, headers: Mapping[str, str]) -> UpstreamResponse:
        if self.registry_down:
            raise ConnectionRefusedError
        self.steps.append(f"{method} {path}")
        return UpstreamResponse(202, [], iter([]), 0)


class Writes:
    def __init__(self, world: World) -> None:
        self._w = world
        self.write = world.write
        self.image = world.image
        self.delete_image = world.delete_image
        self.drop_mark = world.drop_mark

    def streams(self) -> list[Obj]:
        return self._w.streams_list()


def stream(
    namespace: str, name: str, tags: dict[str, list[str]], spec: tuple[str, ...] = ()
) -> Obj:
    obj: dict[str, Any] = {
        "metadata": {"namespace": namespace, "name": name, "resourceVersion": "1"},
        "status": {
            "tags": [
                {"tag": t, "items": [{"image": d} for d in digests]} for t, digests in tags.items()
            ]
        },
    }
    if spec:
        obj["spec"] = {"tags": [{"name": n} for n in spec]}
    return obj


def deletes(world: World) -> ManifestDeletes:
    return ManifestDeletes(world, Writes(world), world, world)


def name(digest: str) -> str:
    return digest.replace(":", "-")


def test_a_tag_delete_writes_metadata_first_then_the_registry() -> None:
    world = World(
        {"ns/app": stream("ns", "app", {"v1": [D["a"]], "v2": [D["b"]]}, spec=("v1",))},
        [_image(D["a"]), _image(D["b"])],
    )
    deletes(world).delete_manifest("ns", "app", "v1")
    assert world.steps == [
        "status ns/app",
        "spec ns/app",
        "DELETE /v2/ns/app/manifests/v1",
        f"delete image {name(D['a'])}",
        f"DELETE /v2/ns/app/manifests/{D['a']}",
    ]
    assert [t["tag"] for t in world.streams["ns/app"]["status"]["tags"]] == ["v2"]


def test_an_image_another_tag_or_stream_references_stays() -> None:
    world = World(
        {
            "ns/app": stream("ns", "app", {"v1": [D["a"]], "v2": [D["a"]], "v3": [D["b"]]}),
            "other/app": stream("other", "app", {"v1": [D["b"]]}),
        },
        [_image(D["a"]), _image(D["b"])],
    )
    deletes(world).delete_manifest("ns", "app", "v1")
    assert world.steps == ["status ns/app", "DELETE /v2/ns/app/manifests/v1"]
    deletes(world).delete_manifest("ns", "app", "v3")
    # b is other/app's: unlinked from ns/app, its Image kept.
    assert world.steps[2:] == [
        "status ns/app",
        "DELETE /v2/ns/app/manifests/v3",
        f"DELETE /v2/ns/app/manifests/{D['b']}",
    ]


def test_a_tag_the_stream_does_not_hold_is_manifest_unknown() -> None:
    world = World({"ns/app": stream("ns", "app", {"v1": [D["a"]]})}, [])
    for namespace, repo, tag in (("ns", "app", "v9"), ("ns", "none", "v1")):
        with pytest.raises(RegistryError) as raised:
            deletes(world).delete_manifest(namespace, repo, tag)
        assert (raised.value.status, raised.value.code) == (404, "MANIFEST_UNKNOWN")
    assert world.steps == []


def test_a_conflicting_push_makes_the_delete_read_and_decide_again() -> None:
    world = World({"ns/app": stream("ns", "app", {"v1": [D["a"]]})}, [_image(D["a"])])
    world.conflicts = 2
    deletes(world).delete_manifest("ns", "app", "v1")
    assert world.steps[0] == "status ns/app"


def test_a_stream_that_never_stops_changing_is_a_failure_to_retry() -> None:
    world = World({"ns/app": stream("ns", "app", {"v1": [D["a"]]})}, [_image(D["a"])])
    world.conflicts = 100
    with pytest.raises(RecordFailed):
        deletes(world).delete_manifest("ns", "app", "v1")
    assert world.steps == []


def test_a_registry_out_of_reach_after_the_metadata_is_left_to_its_reconciler() -> None:
    world = World({"ns/app": stream("ns", "app", {"v1": [D["a"]]})}, [_image(D["a"])])
    world.registry_down = True
    deletes(world).delete_manifest("ns", "app", "v1")  # no error: the delete happened
    assert world.steps == ["status ns/app", f"delete image {name(D['a'])}"]


def test_a_digest_delete_takes_every_entry_and_the_index_children() -> None:
    world = World(
        {"ns/app": stream("ns", "app", {"v1": [D["c"], D["a"]], "v2": [D["a"]]})},
        [_image(D["a"], children=(D["b"],)), _image(D["b"]), _image(D["c"])],
    )
    deletes(world).delete_manifest("ns", "app", D["a"])
    assert world.streams["ns/app"]["status"]["tags"] == [
        {"tag": "v1", "items": [{"image": D["c"]}]}
    ]
    assert world.steps == [
        "status ns/app",
        f"delete image {name(D['a'])}",
        f"delete image {name(D['b'])}",
        f"DELETE /v2/ns/app/manifests/{D['a']}",
        f"DELETE /v2/ns/app/manifests/{D['b']}",
    ]


def test_a_digest_pushed_by_digest_loses_its_mark_and_its_image_when_unreferenced() -> None:
    marked = _image(D["a"])
    marked["metadata"]["annotations"] = {ANNOTATION_PUSHED_BY_DIGEST: "ns/app"}
    world = World({"ns/app": stream("ns", "app", {})}, [marked])
    deletes(world).delete_manifest("ns", "app", D["a"])
    assert world.steps == [
        f"delete image {name(D['a'])}",
        f"DELETE /v2/ns/app/manifests/{D['a']}",
    ]


def test_a_marked_image_another_stream_references_is_unmarked_and_kept() -> None:
    marked = _image(D["a"])
    marked["metadata"]["annotations"] = {ANNOTATION_PUSHED_BY_DIGEST: "ns/app"}
    world = World(
        {"ns/app": stream("ns", "app", {}), "o/x": stream("o", "x", {"v1": [D["a"]]})}, [marked]
    )
    deletes(world).delete_manifest("ns", "app", D["a"])
    assert world.steps == [f"unmark {name(D['a'])}", f"DELETE /v2/ns/app/manifests/{D['a']}"]


def test_a_digest_the_repository_does_not_record_is_manifest_unknown() -> None:
    world = World({"ns/app": stream("ns", "app", {"v1": [D["a"]]})}, [_image(D["b"])])
    with pytest.raises(RegistryError) as raised:
        deletes(world).delete_manifest("ns", "app", D["b"])
    assert raised.value.code == "MANIFEST_UNKNOWN"
    assert world.steps == []


def test_an_index_child_alone_is_denied_naming_its_index() -> None:
    world = World(
        {"ns/app": stream("ns", "app", {"v1": [D["a"]]})},
        [_image(D["a"], children=(D["b"],)), _image(D["b"])],
    )
    with pytest.raises(RegistryError) as raised:
        deletes(world).delete_manifest("ns", "app", D["b"])
    assert (raised.value.status, raised.value.code) == (403, "DENIED")
    assert f"part of image index {D['a']}" in raised.value.message
    assert world.steps == []


def test_a_blob_a_referenced_image_holds_is_denied_saying_why() -> None:
    holder = _image(D["b"], dockerImageLayers=[{"name": D["h"], "size": 5}])
    world = World(
        {"ns/app": stream("ns", "app", {"v1": [D["a"]]})},
        [_image(D["a"], children=(D["b"],)), holder],
    )
    with pytest.raises(RegistryError) as raised:
        deletes(world).check_blob("ns", "app", D["h"])
    assert (raised.value.status, raised.value.code) == (403, "DENIED")
    assert f"held by image {D['b']}, which repository ns/app records" in raised.value.message
    assert "would break pulls" in raised.value.message
    deletes(world).check_blob("ns", "app", D["g"])  # held by nothing: forwarded


UNRELATED = 50
"""Streams and Images that have nothing to do with the delete: none of them is read."""


def _unrelated_world(main: dict[str, Obj], images: list[Obj]) -> World:
    streams = dict(main)
    for i in range(UNRELATED):
        digest = f"sha256:{i:064x}"
        streams[f"o{i}/x"] = stream(f"o{i}", "x", {"v1": [digest]})
        images.append(_image(digest))
    return World(streams, images)


def test_a_delete_reads_only_its_candidates_and_lists_nothing() -> None:
    world = _unrelated_world(
        {"ns/app": stream("ns", "app", {"v1": [D["a"]], "v2": [D["b"]]})},
        [_image(D["a"], children=(D["c"],)), _image(D["b"]), _image(D["c"])],
    )
    deletes(world).delete_manifest("ns", "app", "v1")
    assert f"delete image {name(D['a'])}" in world.steps
    assert f"delete image {name(D['c'])}" in world.steps
    assert "list streams" not in world.reads
    assert sorted(r for r in world.reads if r.startswith("get image")) == [
        f"get image {name(D['a'])}",
        f"get image {name(D['c'])}",
    ]
    assert {r for r in world.reads if r.startswith("get stream")} == {"get stream ns/app"}


def test_a_cache_behind_the_delete_keeps_every_image() -> None:
    """The invariant: a push recorded D in o/x before the delete, the cache has not seen
    it (nor the delete's own write): the delete keeps D's Image, never guesses."""
    world = World({"ns/app": stream("ns", "app", {"v1": [D["a"]]})}, [_image(D["a"])])
    world.freeze_cache()
    world.streams["o/x"] = stream("o", "x", {"v1": [D["a"]]})
    deletes(world).delete_manifest("ns", "app", "v1")
    assert not [s for s in world.steps if s.startswith("delete image")]
    # Unlinked from ns/app all the same: its own stream, read live, no longer names it.
    assert world.steps[-1] == f"DELETE /v2/ns/app/manifests/{D['a']}"


def test_a_stream_the_cache_proposes_is_read_live_before_it_keeps_an_image() -> None:
    world = World({"ns/app": stream("ns", "app", {"v1": [D["a"]]})}, [_image(D["a"])])
    world.stale_streams["o/x"] = stream("o", "x", {"v1": [D["a"]]})  # deleted since
    deletes(world).delete_manifest("ns", "app", "v1")
    assert "get stream o/x" in world.reads
    assert f"delete image {name(D['a'])}" in world.steps


def test_a_child_another_repository_holds_through_its_index_stays() -> None:
    world = World(
        {
            "ns/app": stream("ns", "app", {"v1": [D["b"]]}),
            "o/x": stream("o", "x", {"v1": [D["a"]]}),
        },
        [_image(D["a"], children=(D["b"],)), _image(D["b"])],
    )
    deletes(world).delete_manifest("ns", "app", "v1")
    assert world.steps == [
        "status ns/app",
        "DELETE /v2/ns/app/manifests/v1",
        f"DELETE /v2/ns/app/manifests/{D['b']}",
    ]


def test_a_mark_the_cache_has_not_seen_keeps_the_image() -> None:
    """A push by digest to o/x marked D after the cache last saw D: the live read of
    the candidate shows the mark, and D stays."""
    world = World({"ns/app": stream("ns", "app", {"v1": [D["a"]]})}, [_image(D["a"])])
    world.freeze_cache()
    world.image_list[0]["metadata"]["annotations"] = {ANNOTATION_PUSHED_BY_DIGEST: "o/x"}
    world.cached = (world.streams, world.cached[1] if world.cached else [])  # streams current
    deletes(world).delete_manifest("ns", "app", "v1")
    assert not [s for s in world.steps if s.startswith("delete image")]


def test_a_digest_delete_takes_the_tag_it_is_current_in_with_its_older_images() -> None:
    world = World(
        {"ns/app": stream("ns", "app", {"v1": [D["a"], D["c"]]})},
        [_image(D["a"]), _image(D["c"])],
    )
    deletes(world).delete_manifest("ns", "app", D["a"])
    assert world.streams["ns/app"]["status"]["tags"] == []
    assert f"delete image {name(D['a'])}" in world.steps
    assert f"delete image {name(D['c'])}" in world.steps
