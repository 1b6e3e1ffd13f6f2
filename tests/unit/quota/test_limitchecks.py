"""Limit verdicts and their contract messages."""

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quota.decision import Cause, Decision
from quota.limitchecks import (
    ImageSize,
    Unsized,
    check_push_limits,
    check_stream_write,
    exceeds,
    image_size_violations,
    images_to_look_up,
    limit_exceeded_message,
    size_of,
    stream_violations,
    verdict_of,
)
from quota.limits import EffectiveLimits, Limit, effective_limits
from quota.measure import Descriptor, Manifest, StreamCounts, stream_usage
from quota.push import IndexChild, Push
from quota.resources import IMAGE_STORAGE, STREAM_IMAGES, STREAM_TAGS


def stream_verdict(
    name: str, old: StreamCounts | None, new: StreamCounts, limits: EffectiveLimits
) -> Decision:
    """The verdict on a stream write that adds no image: its counts alone."""
    return check_stream_write(name, old, new, {}, limits)


def size_verdict(name: str, size: int, limits: EffectiveLimits) -> Decision:
    return verdict_of(image_size_violations(name, size, limits))


TAGS_20 = EffectiveLimits({STREAM_TAGS: Limit(Decimal(20), "lr-tags")})


def limits(
    tags: int | None = None, images: int | None = None, storage: str | None = None
) -> EffectiveLimits:
    items: list[dict[str, Any]] = []
    if tags is not None:
        items.append({"type": "alauda.io/ImageStream", "max": {"alauda.io/image-tags": str(tags)}})
    if images is not None:
        items.append({"type": "alauda.io/ImageStream", "max": {"alauda.io/images": str(images)}})
    if storage is not None:
        items.append({"type": "alauda.io/Image", "max": {"storage": storage}})
    return effective_limits([{"metadata": {"name": "lr"}, "spec": {"limits": items}}])


def test_tags_message_matches_the_contract_exactly() -> None:
    verdict = stream_verdict("app", None, StreamCounts(21, 0), TAGS_20)
    assert not verdict.allowed
    assert verdict.message == (
        'ImageStream "app" is forbidden: requested usage of alauda.io/image-tags exceeds the '
        'maximum limit per alauda.io/ImageStream (21 > 20) set by LimitRange "lr-tags"'
    )
    assert verdict.reason == "Forbidden"
    assert verdict.code == 403
    [violation] = stream_violations("app", None, StreamCounts(21, 0), TAGS_20)
    assert violation.key == STREAM_TAGS
    assert (violation.requested, violation.maximum, violation.limit_range) == (
        21,
        Decimal(20),
        "lr-tags",
    )
    assert violation.message == verdict.message


def test_images_message_matches_the_contract_exactly() -> None:
    verdict = stream_verdict("app", StreamCounts(0, 3), StreamCounts(0, 4), limits(images=3))
    assert verdict.message == (
        'ImageStream "app" is forbidden: requested usage of alauda.io/images exceeds the '
        'maximum limit per alauda.io/ImageStream (4 > 3) set by LimitRange "lr"'
    )


def test_storage_message_prints_binary_quantities() -> None:
    verdict = size_verdict("app", 1610612736, limits(storage="1Gi"))
    assert verdict == Decision.deny(
        'ImageStream "app" is forbidden: requested usage of storage exceeds the maximum limit '
        'per alauda.io/Image (1536Mi > 1Gi) set by LimitRange "lr"',
        Cause.IMAGE_STORAGE_LIMIT,
    )
    assert (verdict.code, verdict.reason, verdict.retryable) == (403, "Forbidden", False)
    [violation] = image_size_violations("app", 1610612736, limits(storage="1Gi"))
    assert violation.key == IMAGE_STORAGE


def test_storage_message_with_a_decimal_limit() -> None:
    verdict = size_verdict("app", 1500, limits(storage="1k"))
    assert "(1500 > 1000)" in verdict.message
    assert "exceeds the maximum limit" in verdict.message


def test_limit_exceeded_message_builder() -> None:
    assert limit_exceeded_message("ImageStream", "s", STREAM_IMAGES, 2, Decimal(1), "x") == (
        'ImageStream "s" is forbidden: requested usage of alauda.io/images exceeds the maximum '
        'limit per alauda.io/ImageStream (2 > 1) set by LimitRange "x"'
    )
    assert limit_exceeded_message("Image", "sha256:1", IMAGE_STORAGE, 2048, 1024, "x") == (
        'Image "sha256:1" is forbidden: requested usage of storage exceeds the maximum limit '
        'per alauda.io/Image (2Ki > 1Ki) set by LimitRange "x"'
    )


@pytest.mark.parametrize(
    ("old", "new", "allowed"),
    [
        (None, StreamCounts(0, 0), True),
        (None, StreamCounts(20, 0), True),  # at the limit
        (None, StreamCounts(21, 0), False),
        (StreamCounts(20, 0), StreamCounts(21, 0), False),  # grows past
        (StreamCounts(5, 0), StreamCounts(21, 0), False),
        (StreamCounts(25, 0), StreamCounts(25, 0), True),  # over, unchanged: edit allowed
        (StreamCounts(25, 0), StreamCounts(22, 0), True),  # over, shrinking
        (StreamCounts(25, 0), StreamCounts(26, 0), False),  # over, growing
        (StreamCounts(25, 0), StreamCounts(0, 999), True),  # images unlimited here
    ],
)
def test_stream_rule(old: StreamCounts | None, new: StreamCounts, allowed: bool) -> None:
    assert stream_verdict("app", old, new, TAGS_20).allowed is allowed


def test_both_counts_exceeded_reports_both_in_order() -> None:
    verdict = stream_verdict("app", None, StreamCounts(3, 4), limits(tags=2, images=3))
    found = stream_violations("app", None, StreamCounts(3, 4), limits(tags=2, images=3))
    assert [v.key for v in found] == [STREAM_TAGS, STREAM_IMAGES]
    first, second = verdict.message.split("; ")
    assert first.endswith('(3 > 2) set by LimitRange "lr"')
    assert second.startswith('ImageStream "app" is forbidden: requested usage of alauda.io/images')
    assert second.endswith('(4 > 3) set by LimitRange "lr"')


def test_each_count_is_judged_against_its_own_old_value() -> None:
    # tags were already over and stay; images grow past: only images are reported
    verdict = stream_verdict(
        "app", StreamCounts(9, 3), StreamCounts(9, 4), limits(tags=2, images=3)
    )
    assert verdict.message.count("; ") == 0
    assert "alauda.io/images" in verdict.message
    found = stream_violations("app", StreamCounts(9, 3), StreamCounts(9, 4), limits(2, 3))
    assert [v.key for v in found] == [STREAM_IMAGES]


def test_no_limits_allow_everything() -> None:
    empty = EffectiveLimits()
    assert stream_verdict("app", None, StreamCounts(10**6, 10**6), empty) == Decision(True)
    assert size_verdict("app", 10**15, empty) == Decision.allow()
    assert Decision.allow().message == "" and Decision.allow().code == 200


@pytest.mark.parametrize(("size", "allowed"), [(0, True), (1073741824, True), (1073741825, False)])
def test_image_size_limit_is_inclusive(size: int, allowed: bool) -> None:
    assert size_verdict("app", size, limits(storage="1Gi")).allowed is allowed


def test_fractional_storage_limit() -> None:
    lim = limits(storage="1.1Gi")  # 1181116006.4 bytes
    assert size_verdict("app", 1181116006, lim).allowed
    verdict = size_verdict("app", 1181116007, lim)
    assert "(1181116007 > 1181116006400m)" in verdict.message


# --- property (b): may shrink, may not grow past the limit ------------------------------


@given(
    st.one_of(st.none(), st.integers(0, 60)),
    st.integers(0, 60),
    st.integers(0, 60),
)
def test_allowed_iff_within_limit_or_not_growing(old: int | None, new: int, limit: int) -> None:
    expected = new <= limit or (old is not None and new <= old)
    assert exceeds(old, new, limit) is not expected
    lim = EffectiveLimits(
        {STREAM_TAGS: Limit(Decimal(limit), "t"), STREAM_IMAGES: Limit(Decimal(limit), "i")}
    )
    for old_counts, new_counts in [
        (None if old is None else StreamCounts(old, 0), StreamCounts(new, 0)),
        (None if old is None else StreamCounts(0, old), StreamCounts(0, new)),
    ]:
        verdict = stream_verdict("s", old_counts, new_counts, lim)
        assert verdict.allowed is expected
        assert (verdict.message == "") is expected
        if not expected:
            assert f"({new} > {limit})" in verdict.message


# --- PushReview -------------------------------------------------------------------------


def existing(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {
        "status": {"tags": [{"tag": tag, "items": [{"image": digest}]} for tag, digest in pairs]}
    }


SMALL = Manifest(Descriptor("sha256:cfg", 100), (Descriptor("sha256:l1", 900),))


def push_verdict(
    repository: str,
    stream: dict[str, Any] | None,
    tag: str | None,
    digest: str,
    manifest: Manifest,
    limits: EffectiveLimits,
) -> Decision:
    """The verdict on a push into ``stream`` (None: a new repository), its usage measured
    as the caches measure it."""
    push = Push("team-a", repository, tag, digest, "", manifest)
    return check_push_limits(push, None if stream is None else stream_usage(stream), limits)


def test_push_to_a_new_repository_within_limits() -> None:
    assert push_verdict("app", None, "v1", "sha256:1", SMALL, limits(1, 1, "1Ki")).allowed


def test_push_to_a_new_repository_is_a_create() -> None:
    verdict = push_verdict("app", None, "v1", "sha256:1", SMALL, limits(tags=0))
    assert "(1 > 0)" in verdict.message


def test_push_of_a_new_tag_past_the_limit_is_denied() -> None:
    stream = existing(("v1", "sha256:1"), ("v2", "sha256:1"))
    verdict = push_verdict("app", stream, "v3", "sha256:1", SMALL, limits(tags=2))
    assert verdict.message == (
        'ImageStream "app" is forbidden: requested usage of alauda.io/image-tags exceeds the '
        'maximum limit per alauda.io/ImageStream (3 > 2) set by LimitRange "lr"'
    )


def test_push_by_digest_is_checked_for_images() -> None:
    stream = existing(("v1", "sha256:1"))
    verdict = push_verdict("app", stream, None, "sha256:2", SMALL, limits(images=1))
    assert not verdict.allowed
    assert "alauda.io/images" in verdict.message and "(2 > 1)" in verdict.message


def test_push_by_digest_is_checked_for_size() -> None:
    verdict = push_verdict("app", existing(), None, "sha256:2", SMALL, limits(storage="999"))
    assert verdict.message.endswith('per alauda.io/Image (1000 > 999) set by LimitRange "lr"')


def test_repush_onto_an_over_limit_stream_that_adds_nothing_is_allowed() -> None:
    stream = existing(("v1", "sha256:1"), ("v2", "sha256:2"), ("v3", "sha256:3"))
    assert push_verdict("app", stream, "v2", "sha256:3", SMALL, limits(2, 2)).allowed
    assert not push_verdict("app", stream, "v2", "sha256:4", SMALL, limits(2, 2)).allowed


def test_push_reports_size_before_stream_counts() -> None:
    verdict = push_verdict("app", existing(), "v1", "sha256:9", SMALL, limits(0, 0, "1"))
    messages = verdict.message.split("; ")
    assert [m.split("requested usage of ")[1].split(" ")[0] for m in messages] == [
        "storage",
        "alauda.io/image-tags",
        "alauda.io/images",
    ]
    assert verdict.cause is Cause.IMAGE_STORAGE_LIMIT  # the first reported


@pytest.mark.parametrize(
    ("limits_", "cause"),
    [
        (limits(tags=0), Cause.IMAGE_TAGS_LIMIT),
        (limits(images=0), Cause.IMAGES_LIMIT),
        (limits(storage="1"), Cause.IMAGE_STORAGE_LIMIT),
        (limits(tags=0, images=0), Cause.IMAGE_TAGS_LIMIT),
    ],
)
def test_a_limit_denial_names_the_rule_it_reports_first(
    limits_: EffectiveLimits, cause: Cause
) -> None:
    verdict = push_verdict("app", None, "v1", "sha256:9", SMALL, limits_)
    assert (verdict.cause, verdict.retryable) == (cause, False)


def test_an_index_is_judged_by_its_largest_child() -> None:
    small = IndexChild("sha256:a", "", 10, None, SMALL)
    big = Manifest(Descriptor("sha256:c", 10), (Descriptor("sha256:l", 5000),))
    index = Push("team-a", "app", "v1", "sha256:i", "", Manifest(None), (small,))
    assert index.image_size == SMALL.size
    assert check_push_limits(index, None, limits(storage="1k")).allowed
    larger = Push(
        "team-a",
        "app",
        "v1",
        "sha256:i",
        "",
        Manifest(None),
        (small, IndexChild("sha256:b", "", 10, None, big)),
    )
    assert "(5010 > 1000)" in check_push_limits(larger, None, limits(storage="1k")).message
    empty = Push("team-a", "app", "v1", "sha256:i", "", Manifest(None), ())
    assert empty.image_size == 0


# --- check_stream_write: the ImageStream handler's one decision, from measured counts ----


def history(*digests: str) -> StreamCounts:
    """The counts of a stream whose one tag has pointed at ``digests``."""
    stream = {"status": {"tags": [{"tag": "v1", "items": [{"image": d} for d in digests]}]}}
    return stream_usage(stream).counts


def image(size: Any) -> dict[str, Any]:
    return {"dockerImageMetadata": {"size": size}}


@pytest.mark.parametrize(
    ("image_object", "size"),
    [
        (None, Unsized.NO_IMAGE),
        ({}, Unsized.NO_SIZE),
        (image("huge"), Unsized.NO_SIZE),
        (image(0), 0),
        (image(3000), 3000),
    ],
)
def test_an_images_size_is_measured_once_or_says_why_not(
    image_object: dict[str, Any] | None, size: ImageSize
) -> None:
    assert size_of(image_object) == size


def test_stream_write_checks_each_known_image_size_in_digest_order() -> None:
    decision = check_stream_write(
        "app",
        None,
        history("sha256:b", "sha256:a"),
        {"sha256:b": 3000, "sha256:a": 2000},
        limits(storage="1k"),
    )
    assert not decision.allowed
    first, second = decision.message.split("; ")
    assert "(2000 > 1000)" in first and "(3000 > 1000)" in second


def unknown_message(digest: str, why: str, more: int = 0) -> str:
    others = f" and {more} more" if more else ""
    return (
        f"the size of image {digest}{others} is not known yet ({why}), so the storage limit "
        'per alauda.io/Image set by LimitRange "lr" cannot be checked; retry'
    )


@pytest.mark.parametrize(
    ("unsized", "why"),
    [
        (Unsized.NO_IMAGE, "no Image object describes it"),
        (size_of({}), "its Image records no size"),
        (size_of(image("huge")), "its Image records no size"),
        (Unsized.UNREAD, "its Image could not be read"),
    ],
)
def test_stream_write_with_an_unknown_size_under_a_storage_limit_is_denied_retryably(
    unsized: Unsized, why: str
) -> None:
    decision = check_stream_write(
        "app", None, history("sha256:a"), {"sha256:a": unsized}, limits(storage="1k")
    )
    assert decision == Decision.deny(unknown_message("sha256:a", why), Cause.IMAGE_SIZE_UNKNOWN)
    assert (decision.code, decision.reason, decision.retryable) == (
        503,
        "ServiceUnavailable",
        True,
    )


def test_stream_write_with_an_unknown_size_and_no_storage_limit_is_allowed() -> None:
    decision = check_stream_write(
        "app", None, history("sha256:a"), {"sha256:a": Unsized.NO_IMAGE}, limits(images=5)
    )
    assert decision == Decision.allow()


def test_stream_write_names_the_first_unknown_digest_and_counts_the_rest() -> None:
    decision = check_stream_write(
        "app",
        None,
        history("sha256:c", "sha256:b", "sha256:a", "sha256:k"),
        {
            "sha256:c": Unsized.NO_IMAGE,
            "sha256:b": Unsized.NO_SIZE,
            "sha256:a": 10,
            "sha256:k": Unsized.UNREAD,
        },
        limits(storage="1k"),
    )
    assert decision.message == unknown_message("sha256:b", "its Image records no size", 2)


def test_stream_write_reports_a_certain_violation_rather_than_an_unknown_size() -> None:
    """Retrying cannot help a write that breaks a limit anyway: that is the answer."""
    decision = check_stream_write(
        "app",
        None,
        history("sha256:a", "sha256:b"),
        {"sha256:a": Unsized.NO_IMAGE, "sha256:b": 2000},
        limits(images=1, storage="1k"),
    )
    assert (decision.allowed, decision.code) == (False, 403)
    assert "storage exceeds the maximum limit" in decision.message
    assert "alauda.io/images exceeds the maximum limit" in decision.message
    assert "not known yet" not in decision.message


def test_images_to_look_up_are_the_unsized_ones_in_digest_order() -> None:
    sizes: dict[str, ImageSize] = {
        "sha256:c": Unsized.NO_IMAGE,
        "sha256:b": Unsized.NO_SIZE,
        "sha256:a": 10,
        "sha256:0": Unsized.NO_IMAGE,
    }
    assert images_to_look_up(sizes, limits(storage="1k")) == ("sha256:0", "sha256:b", "sha256:c")


def test_without_a_storage_limit_no_image_needs_a_look_up() -> None:
    assert images_to_look_up({"sha256:a": Unsized.NO_IMAGE}, limits(tags=1, images=1)) == ()


def test_stream_write_reports_sizes_before_counts() -> None:
    decision = check_stream_write(
        "app", None, history("sha256:a"), {"sha256:a": 2000}, limits(0, 0, "1k")
    )
    messages = decision.message.split("; ")
    assert [m.split("requested usage of ")[1].split(" ")[0] for m in messages] == [
        "storage",
        "alauda.io/image-tags",
        "alauda.io/images",
    ]


def test_stream_write_lets_an_over_limit_stream_shrink() -> None:
    old = history("sha256:a", "sha256:b", "sha256:c")
    new = history("sha256:a", "sha256:b")
    assert check_stream_write("app", old, new, {}, limits(images=1)).allowed
    assert not check_stream_write("app", None, new, {}, limits(images=1)).allowed


def test_counts_print_as_counts_even_at_binary_round_numbers() -> None:
    """A count of 1024 is '1024', never '1Ki' (only storage is a binary quantity)."""
    verdict = stream_verdict("app", None, StreamCounts(2048, 0), limits(tags=1024))
    assert "(2048 > 1024)" in verdict.message


def test_a_push_too_large_names_the_repository() -> None:
    big = Manifest(Descriptor("sha256:c", 10), (Descriptor("sha256:l", 5000),))
    verdict = push_verdict("shop", None, "v1", "sha256:9", big, limits(storage="1k"))
    assert verdict.message.startswith('ImageStream "shop" is forbidden: requested usage of storage')
