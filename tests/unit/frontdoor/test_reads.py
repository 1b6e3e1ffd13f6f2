"""Manifest reads decided from the Image API: the cache first, the API server when the
cache cannot answer, Images kept by digest, and nothing else ever served."""

from __future__ import annotations

from typing import Any

import pytest

from frontdoor.reads import (
    IMAGE_CACHE_ENTRIES,
    IMAGE_CACHE_SECONDS,
    MAX_IMAGE_READS,
    MISSING_IMAGE_SECONDS,
    ManifestReads,
)
from quota.pushrecords import ANNOTATION_PUSHED_BY_DIGEST
from quota.served import RecordedImage, RecordedRepository, recorded_repository
from serving.callerreviews import TtlCache

A, B, C, D = ("sha256:" + ch * 64 for ch in "abcd")


def stream(**tags: list[str]) -> dict[str, Any]:
    return {
        "status": {
            "tags": [
                {"tag": t, "items": [{"image": d} for d in items]} for t, items in tags.items()
            ]
        }
    }


class Api:
    """The watch cache and the API server, each call counted."""

    def __init__(self) -> None:
        self.cached: dict[str, dict[str, Any]] = {}
        self.live: dict[str, dict[str, Any]] = {}
        self.images: dict[str, dict[str, Any]] = {}
        self.stream_reads = 0
        self.image_reads: list[str] = []

    def recorded(self, namespace: str, name: str) -> RecordedRepository | None:
        found = self.cached.get(f"{namespace}/{name}")
        return None if found is None else recorded_repository(found)

    def stream(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.stream_reads += 1
        return self.live.get(f"{namespace}/{name}")

    def image(self, digest: str) -> dict[str, Any] | None:
        self.image_reads.append(digest)
        return self.images.get(digest)


@pytest.fixture
def api() -> Api:
    return Api()


def reads(api: Api, now: list[float] | None = None) -> ManifestReads:
    clock = now or [0.0]
    return ManifestReads(
        api,
        api,
        TtlCache(300.0, 100, clock=lambda: clock[0]),
        TtlCache(MISSING_IMAGE_SECONDS, 100, clock=lambda: clock[0]),
    )


def test_a_cached_tag_or_history_digest_is_served_with_no_call(api: Api) -> None:
    api.cached["team-a/app"] = stream(v1=[B, A])
    door = reads(api)
    assert door.manifest_digest("team-a", "app", "v1") == B
    assert door.manifest_digest("team-a", "app", A) == A
    assert (api.stream_reads, api.image_reads) == (0, [])


def test_a_stream_the_cache_has_not_seen_yet_is_read_live(api: Api) -> None:
    """A pull right after its push: the tag is in the API server, not yet in the cache."""
    api.cached["team-a/app"] = stream(v1=[A])
    api.live["team-a/app"] = stream(v1=[A], v2=[B])
    api.live["team-a/new"] = stream(v1=[C])
    door = reads(api)
    assert door.manifest_digest("team-a", "app", "v2") == B
    assert door.manifest_digest("team-a", "new", "v1") == C
    assert api.stream_reads == 2


def test_a_stale_registry_tag_is_never_what_decides(api: Api) -> None:
    """The stream moved v1 to B: B is served, whatever the registry's tag says."""
    api.cached["team-a/app"] = stream(v1=[B, A])
    assert reads(api).manifest_digest("team-a", "app", "v1") == B


@pytest.mark.parametrize("reference", ["v2", C])
def test_what_nothing_records_is_unknown(api: Api, reference: str) -> None:
    api.cached["team-a/app"] = api.live["team-a/app"] = stream(v1=[A])
    assert reads(api).manifest_digest("team-a", "app", reference) is None


def test_a_repository_with_no_stream_serves_nothing_and_reads_no_image(api: Api) -> None:
    """A manifest uploaded as a blob into a repository nobody pushed to (issue 17, item 1)."""
    api.images[C] = {"dockerImageReference": f"host/team-a/sneak@{C}"}
    assert reads(api).manifest_digest("team-a", "sneak", C) is None
    assert api.image_reads == []


def pushed_by_digest(repository: str, digest: str) -> dict[str, Any]:
    """An Image as the front door records a push by digest to ``repository``."""
    return {
        "metadata": {"annotations": {ANNOTATION_PUSHED_BY_DIGEST: repository}},
        "dockerImageReference": f"host:5000/{repository}@{digest}",
    }


def test_a_push_by_digest_is_served_from_its_repository_only(api: Api) -> None:
    api.cached["team-a/app"] = api.live["team-a/app"] = stream()
    api.cached["team-a/other"] = api.live["team-a/other"] = stream()
    api.images[C] = pushed_by_digest("team-a/app", C)
    door = reads(api)
    assert door.manifest_digest("team-a", "app", C) == C
    assert door.manifest_digest("team-a", "other", C) is None


def test_the_image_of_a_tag_push_refused_at_its_tag_is_never_served(api: Api) -> None:
    """Review B1: the push saved its Image (reference naming this repository), then the
    webhook refused its tag. The stream never recorded it, so nothing serves it."""
    api.cached["team-a/app"] = api.live["team-a/app"] = stream(v1=[A])
    api.images[C] = {"dockerImageReference": f"host:5000/team-a/app@{C}"}
    assert reads(api).manifest_digest("team-a", "app", C) is None


def test_a_push_by_digest_to_a_cached_stream_is_served_with_no_stream_read(api: Api) -> None:
    api.cached["team-a/app"] = api.live["team-a/app"] = stream()
    api.images[C] = pushed_by_digest("team-a/app", C)
    assert reads(api).manifest_digest("team-a", "app", C) == C
    assert api.stream_reads == 0


def test_an_indexs_children_are_served_where_the_index_is_recorded(api: Api) -> None:
    """Children pushed to another repository first (a copy): found through the index."""
    api.cached["team-a/copy"] = api.live["team-a/copy"] = stream(v1=[A])
    api.images[A] = {"dockerImageManifests": [{"digest": B}, {"digest": C}]}
    api.images[B] = {"dockerImageReference": f"host/team-a/multi@{B}"}
    door = reads(api)
    assert door.manifest_digest("team-a", "copy", B) == B
    assert door.manifest_digest("team-a", "copy", C) == C
    assert door.manifest_digest("team-a", "copy", D) is None


def test_a_nested_indexs_grandchildren_are_served_where_the_outer_index_is_recorded(
    api: Api,
) -> None:
    """An index of indexes: each child index's Image names its own children."""
    grandchild = "sha256:" + "e" * 64
    api.cached["team-a/app"] = api.live["team-a/app"] = stream(v1=[A])
    api.images[A] = {"dockerImageManifests": [{"digest": B}, {"digest": C}]}
    api.images[B] = {}  # an image manifest among the indexes
    api.images[C] = {"dockerImageManifests": [{"digest": grandchild}]}
    door = reads(api)
    assert door.manifest_digest("team-a", "app", C) == C
    assert door.manifest_digest("team-a", "app", grandchild) == grandchild
    assert door.manifest_digest("team-a", "app", D) is None
    assert api.image_reads.count(C) == 1  # kept: the next read costs no GET


def test_images_found_are_kept_by_digest_and_absence_briefly(api: Api) -> None:
    api.cached["team-a/copy"] = stream(v1=[A])
    api.images[A] = {"dockerImageManifests": [{"digest": B}]}
    now = [0.0]
    door = reads(api, now)
    for _ in range(3):
        assert door.manifest_digest("team-a", "copy", B) == B
    assert api.image_reads.count(A) == 1
    assert api.image_reads.count(B) == 1  # B has no Image: kept missing for a while
    now[0] += MISSING_IMAGE_SECONDS + 1
    api.images[B] = pushed_by_digest("team-a/copy", B)
    api.images.pop(A)  # still kept: an Image's content never changes
    assert door.manifest_digest("team-a", "copy", B) == B
    assert api.image_reads.count(B) == 2


def test_a_kept_image_is_asked_again_after_its_time(api: Api) -> None:
    api.cached["team-a/copy"] = stream(v1=[A])
    api.images[A] = {"dockerImageManifests": [{"digest": B}]}
    now = [0.0]
    door = reads(api, now)
    assert door.manifest_digest("team-a", "copy", B) == B
    del api.images[A]  # pruned
    now[0] = 301.0
    assert door.manifest_digest("team-a", "copy", B) is None


def long_history(count: int) -> list[str]:
    return ["sha256:" + f"{n:064x}" for n in range(count)]


def test_an_unknown_digest_costs_one_stream_read_and_a_few_image_reads(api: Api) -> None:
    """Review H1: it cost the digest's Image twice and 50 history Images twice (cached
    stream, then live), none of them kept when missing."""
    history = long_history(100)
    api.cached["team-a/app"] = api.live["team-a/app"] = stream(v1=history)
    assert reads(api).manifest_digest("team-a", "app", D) is None
    assert api.stream_reads == 1
    assert len(api.image_reads) == MAX_IMAGE_READS
    assert api.image_reads[:2] == [D, history[0]]  # its own Image, then the current one


def test_the_digests_own_image_is_asked_once_per_read(api: Api) -> None:
    api.cached["team-a/app"] = stream(v1=[A])
    api.live["team-a/app"] = stream(v1=[B, A])
    api.images[A] = api.images[B] = {}
    assert reads(api).manifest_digest("team-a", "app", D) is None
    assert api.image_reads == [D, A, B]


def test_a_flood_of_unknown_digests_costs_a_constant_per_read(api: Api) -> None:
    """Distinct made-up digests defeat any miss cache: the bound is per read."""
    api.cached["team-a/app"] = api.live["team-a/app"] = stream(v1=long_history(100))
    door = reads(api)
    for n in range(20):
        before = (api.stream_reads, len(api.image_reads))
        made_up = "sha256:" + f"{n:x}".rjust(64, "f")
        assert door.manifest_digest("team-a", "app", made_up) is None
        assert api.stream_reads - before[0] == 1
        assert len(api.image_reads) - before[1] <= MAX_IMAGE_READS


def test_an_index_past_one_reads_budget_is_found_by_the_next_reads(api: Api) -> None:
    """Images read are kept (non-indexes then cost nothing), so the search moves on."""
    history = long_history(3 * MAX_IMAGE_READS)
    for digest in history:
        api.images[digest] = {}
    api.images[history[-1]] = {"dockerImageManifests": [{"digest": D}]}
    api.cached["team-a/app"] = api.live["team-a/app"] = stream(
        **{f"t{n}": [d] for n, d in enumerate(history)}
    )
    door = reads(api)
    answers = [door.manifest_digest("team-a", "app", D) for _ in range(4)]
    assert answers[-1] == D and answers[0] is None
    assert sorted(set(api.image_reads) - {D}) == sorted(history)
    assert len(api.image_reads) - len(set(api.image_reads)) <= 4  # only D is asked again


def test_a_digest_this_worker_recorded_is_readable_at_once(api: Api) -> None:
    """A client's HEAD before its push by digest found no Image; the push's own worker
    forgets that miss when it records the Image."""
    api.cached["team-a/app"] = api.live["team-a/app"] = stream()
    door = reads(api)
    assert door.manifest_digest("team-a", "app", C) is None
    api.images[C] = pushed_by_digest("team-a/app", C)
    door.recorded(C)
    assert door.manifest_digest("team-a", "app", C) == C


def test_the_tag_list_is_read_live(api: Api) -> None:
    api.cached["team-a/app"] = stream(v1=[A], gone=[B])
    api.live["team-a/app"] = stream(v1=[A])
    door = reads(api)
    assert door.tags("team-a", "app") == ["v1"]
    assert door.tags("team-a", "none") is None


def test_a_recorded_image_is_kept_as_its_small_projection(api: Api) -> None:
    api.cached["team-a/copy"] = stream(v1=[A])
    api.images[A] = {"dockerImageManifests": [{"digest": B}], "dockerImageLayers": ["big"] * 99}
    cache: TtlCache[RecordedImage] = TtlCache(300.0)
    ManifestReads(api, api, cache).manifest_digest("team-a", "copy", B)
    assert cache.get(A) == RecordedImage("", frozenset({B}))


def test_by_default_images_are_kept_for_the_image_cache_seconds(api: Api) -> None:
    """As ``pushreview.auth``'s caches are inspected: the process's default caches are
    built here, with the real clock, so their bounds are read, not waited for."""
    door = ManifestReads(api, api)
    assert (door._images._ttl, door._images._max) == (IMAGE_CACHE_SECONDS, IMAGE_CACHE_ENTRIES)
    assert (door._missing._ttl, door._missing._max) == (MISSING_IMAGE_SECONDS, IMAGE_CACHE_ENTRIES)
