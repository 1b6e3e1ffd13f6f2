"""What a repository serves is what its ImageStream and Images record: each tag's current
image, the whole history, an index's children, and the spec's tag pages."""

from __future__ import annotations

from typing import Any

import pytest

from quota.pushrecords import ANNOTATION_PUSHED_BY_DIGEST
from quota.served import (
    RecordedRepository,
    TagPage,
    current_images,
    recorded_image,
    recorded_repository,
    stale_tags,
    tag_page,
)

A, B, C = ("sha256:" + ch * 64 for ch in "abc")


def stream(*tags: tuple[str, list[str]], spec: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "spec": {"tags": [{"name": name} for name in spec]},
        "status": {
            "tags": [{"tag": tag, "items": [{"image": d} for d in items]} for tag, items in tags]
        },
    }


def test_a_tag_serves_its_newest_history_entry_and_the_history_stays_readable() -> None:
    recorded = recorded_repository(stream(("v1", [B, A]), ("v2", [C])))
    assert recorded == RecordedRepository({"v1": B, "v2": C}, frozenset({A, B, C}))
    assert recorded.tag_target("v1") == B
    assert recorded.tag_target("v3") is None


def test_a_spec_tag_with_no_pushed_image_serves_nothing_and_is_not_listed() -> None:
    recorded = recorded_repository(stream(("v1", [A]), spec=("v1", "from-elsewhere")))
    assert recorded.tags() == ["v1"]
    assert recorded.tag_target("from-elsewhere") is None


@pytest.mark.parametrize(
    "status",
    [
        None,
        "nonsense",
        {"tags": "nonsense"},
        {"tags": [None, {"tag": 7}, {"tag": ""}, {"tag": "v1"}, {"tag": "v1", "items": []}]},
        {"tags": [{"tag": "v1", "items": [{"image": ""}]}, {"tag": "v1", "items": ["x"]}]},
    ],
)
def test_a_malformed_status_records_no_tag(status: Any) -> None:
    assert current_images({"status": status}) == {}


def test_a_malformed_or_repeated_entry_does_not_hide_the_tags_after_it() -> None:
    tags = [
        "nonsense",
        {"tag": 7, "items": [{"image": A}]},
        {"tag": "v1", "items": [{"image": A}]},
        {"tag": "v1", "items": [{"image": B}]},
        {"tag": "v2", "items": [{"image": C}]},
    ]
    assert current_images({"status": {"tags": tags}}) == {"v1": A, "v2": C}


def test_a_tag_repeated_in_status_keeps_its_first_entry() -> None:
    assert current_images(stream(("v1", [A]), ("v1", [B]))) == {"v1": A}


def test_no_stream_records_nothing() -> None:
    assert recorded_repository(None) == RecordedRepository({}, frozenset())


def test_tags_are_listed_in_lexical_order() -> None:
    assert recorded_repository(stream(("b", [A]), ("a", [A]), ("B", [A]))).tags() == [
        "B",
        "a",
        "b",
    ]


def test_an_image_is_served_by_digest_where_a_push_by_digest_marked_it() -> None:
    image = recorded_image(
        {"metadata": {"annotations": {ANNOTATION_PUSHED_BY_DIGEST: "team-a/app"}}}
    )
    assert image.pushed_by_digest_to("team-a/app")
    assert not image.pushed_by_digest_to("team-a/other")
    assert not image.pushed_by_digest_to("a/app")  # a suffix of the namespace is not it


def test_a_reference_naming_the_repository_does_not_serve_an_image_by_digest() -> None:
    """A tag push writes that reference before its tag is judged again (and perhaps
    refused); Images recorded before the mark existed are served by tag or index only."""
    image = recorded_image({"dockerImageReference": f"registry:5000/team-a/app@{A}"})
    assert not image.pushed_by_digest_to("team-a/app")


def test_an_index_image_lists_its_children() -> None:
    image = recorded_image(
        {"dockerImageManifests": [{"digest": A}, {"digest": B}, {"nodigest": 1}, "x"]}
    )
    assert image.children == frozenset({A, B})
    assert recorded_image({"dockerImageManifests": "x"}).children == frozenset()


@pytest.mark.parametrize(
    "image",
    [
        None,
        {},
        {"metadata": "x"},
        {"metadata": {"annotations": "x"}},
        {"metadata": {"annotations": {ANNOTATION_PUSHED_BY_DIGEST: 7}}},
    ],
)
def test_an_image_without_a_usable_mark_was_pushed_by_digest_nowhere(image: Any) -> None:
    assert not recorded_image(image).pushed_by_digest_to("")
    assert not recorded_image(image).pushed_by_digest_to("team-a/app")


@pytest.mark.parametrize(
    ("count", "last", "page"),
    [
        (None, None, TagPage(["a", "b", "c"], None)),
        (2, None, TagPage(["a", "b"], "b")),
        (2, "b", TagPage(["c"], None)),
        (3, None, TagPage(["a", "b", "c"], None)),
        (1, "a", TagPage(["b"], "b")),
        (0, None, TagPage([], None)),
        (None, "c", TagPage([], None)),
        (None, "0", TagPage(["a", "b", "c"], None)),  # a last before every tag
    ],
)
def test_tag_pages_follow_n_and_last(count: int | None, last: str | None, page: TagPage) -> None:
    assert tag_page(["c", "a", "b"], count, last) == page


def test_stale_tags_are_those_the_stream_names_nowhere() -> None:
    held = {
        "spec": {"tags": [{"name": "spec-only"}]},
        "status": {"tags": [{"tag": "v1", "items": [{"image": A}]}]},
    }
    assert stale_tags(["v2", "v1", "spec-only", "old", "v2"], held) == ["old", "v2"]


def test_without_a_stream_every_registry_tag_is_stale() -> None:
    assert stale_tags(["b", "a"], None) == ["a", "b"]
    assert stale_tags([], None) == []
