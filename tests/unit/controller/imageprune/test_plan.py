from __future__ import annotations

from datetime import timedelta

import pytest

from controller.imageprune.plan import Policy, plan, prune_history
from tests.unit.controller.imageprune.samples import (
    NOW,
    by_digest,
    digest,
    event,
    image,
    stream,
)

POLICY = Policy(keep_tag_revisions=2, keep_younger_than=timedelta(minutes=60))


def four_revisions() -> dict[str, list[dict[str, object]]]:
    return {"v1": [event(4), event(3), event(2), event(1)]}


def test_the_newest_revisions_of_each_tag_are_kept() -> None:
    new_tags, removed = prune_history(stream("app", four_revisions()), POLICY, NOW, frozenset())
    assert [item["image"] for item in new_tags[0]["items"]] == [digest(4), digest(3)]
    assert [(r.tag, r.image, r.position) for r in removed] == [
        ("v1", digest(2), 2),
        ("v1", digest(1), 3),
    ]


def test_a_revision_younger_than_keep_younger_than_stays_past_the_count() -> None:
    history = {"v1": [event(4), event(3), event(2, NOW - timedelta(minutes=59)), event(1)]}
    _, removed = prune_history(stream("app", history), POLICY, NOW, frozenset())
    assert [r.image for r in removed] == [digest(1)]


def test_a_revision_a_workload_uses_stays_past_the_count() -> None:
    _, removed = prune_history(stream("app", four_revisions()), POLICY, NOW, frozenset({digest(1)}))
    assert [r.image for r in removed] == [digest(2)]


def test_a_tag_whose_whole_history_goes_leaves_the_status() -> None:
    history = {"old": [event(1)], "v1": [event(2)]}
    new_tags, removed = prune_history(
        stream("app", history), Policy(keep_tag_revisions=0), NOW, frozenset({digest(2)})
    )
    assert [r.image for r in removed] == [digest(1)]
    assert [tag["tag"] for tag in new_tags] == ["v1"]


def test_a_revision_with_an_unreadable_time_is_kept() -> None:
    history = {"v1": [event(3), event(2), {"image": digest(1), "created": "yesterday"}]}
    _, removed = prune_history(stream("app", history), POLICY, NOW, frozenset())
    assert removed == ()


def test_an_image_no_stream_references_after_the_history_is_pruned_is_removed() -> None:
    images = by_digest(*(image(n, layers={n: 100 * n}) for n in range(1, 5)))
    result = plan([stream("app", four_revisions())], images, {}, POLICY, NOW)
    assert [r.digest for r in result.images] == [digest(1), digest(2)]
    assert result.manifests == (("team-a/app", digest(1)), ("team-a/app", digest(2)))
    assert result.freed_bytes == 100 + 200
    assert [item["image"] for item in result.statuses["team-a/app"][0]["items"]] == [
        digest(4),
        digest(3),
    ]


def test_an_image_another_stream_still_references_is_kept() -> None:
    images = by_digest(*(image(n, layers={n: 10}) for n in range(1, 5)))
    other = stream("other", {"latest": [event(1)]})
    result = plan([stream("app", four_revisions()), other], images, {}, POLICY, NOW)
    assert [r.digest for r in result.images] == [digest(2)]


def test_an_image_a_workload_uses_is_kept_and_said_so() -> None:
    images = by_digest(image(1, layers={1: 10}), image(2, layers={2: 10}))
    result = plan([], images, {digest(1): ("Pod team-a/web",)}, POLICY, NOW)
    assert [r.digest for r in result.images] == [digest(2)]
    assert [(k.digest, k.why) for k in result.kept] == [(digest(1), "used by Pod team-a/web")]


def test_a_revision_kept_for_a_workload_is_said_so() -> None:
    images = by_digest(*(image(n) for n in range(1, 5)))
    result = plan(
        [stream("app", four_revisions())], images, {digest(1): ("Pod team-a/web",)}, POLICY, NOW
    )
    assert [r.digest for r in result.images] == [digest(2)]
    assert [(k.digest, k.why) for k in result.kept] == [(digest(1), "used by Pod team-a/web")]


def test_an_image_younger_than_keep_younger_than_is_kept() -> None:
    images = by_digest(image(1, created=NOW - timedelta(minutes=5)), image(2))
    result = plan([], images, {}, POLICY, NOW)
    assert [r.digest for r in result.images] == [digest(2)]
    assert [k.digest for k in result.kept] == [digest(1)]


def test_an_image_pushed_by_digest_is_referenced_by_its_mark() -> None:
    marked = image(1, annotations={"image.alauda.io/pushed-by-digest-to": "team-a/app"})
    result = plan([], by_digest(marked), {}, POLICY, NOW)
    assert result.images == ()


def test_a_kept_index_keeps_its_children_and_a_removed_one_goes_before_them() -> None:
    images = by_digest(
        image(10, children=(11, 12)),
        image(11, layers={1: 5}),
        image(12, layers={2: 7}),
        image(20, children=(21,)),
        image(21, layers={3: 9}),
    )
    kept_index = stream("app", {"v1": [event(10)]})
    result = plan([kept_index], images, {}, POLICY, NOW)
    assert [r.digest for r in result.images] == [digest(20), digest(21)]
    assert result.freed_bytes == 9


def test_a_blob_a_kept_image_holds_is_not_counted_as_freed() -> None:
    images = by_digest(image(1, layers={1: 100, 2: 50}), image(2, layers={2: 50, 3: 30}))
    result = plan([stream("app", {"v1": [event(2)]})], images, {}, POLICY, NOW)
    assert [(r.digest, r.freed_bytes) for r in result.images] == [(digest(1), 100)]


def test_a_blob_two_removed_images_share_is_counted_once() -> None:
    images = by_digest(image(1, layers={1: 100}), image(2, layers={1: 100, 2: 1}))
    result = plan([], images, {}, POLICY, NOW)
    assert [r.freed_bytes for r in result.images] == [100, 1]
    assert result.freed_bytes == 101


def test_a_manifest_is_deleted_from_every_repository_that_held_it() -> None:
    images = by_digest(image(1, repository="team-a/app"), *(image(n) for n in (2, 3, 4)))
    other = stream("copy", {"v1": [event(9), event(8), event(1)]}, namespace="team-b")
    result = plan([stream("app", four_revisions()), other], images, {}, POLICY, NOW)
    assert ("team-b/copy", digest(1)) in result.manifests
    assert ("team-a/app", digest(1)) in result.manifests


def test_nothing_to_prune_is_an_empty_plan() -> None:
    images = by_digest(image(1))
    result = plan([stream("app", {"v1": [event(1)]})], images, {}, POLICY, NOW)
    assert (result.revisions, result.images, result.statuses, result.freed_bytes) == (
        (),
        (),
        {},
        0,
    )


def test_now_must_carry_a_timezone() -> None:
    with pytest.raises(ValueError):
        plan([], {}, {}, POLICY, NOW.replace(tzinfo=None))
