"""Effective limits across LimitRanges."""

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quota.limits import EffectiveLimits, Limit, effective_limits
from quota.resources import IMAGE_STORAGE, LIMIT_KEYS, STREAM_IMAGES, STREAM_TAGS


def limit_range(name: str | None, *items: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "spec": {"limits": list(items)},
    }
    if name is not None:
        obj["metadata"] = {"name": name, "namespace": "team-a"}
    return obj


def stream_item(**maxima: Any) -> dict[str, Any]:
    return {"type": "alauda.io/ImageStream", "max": maxima}


def tags(value: Any) -> dict[str, Any]:
    return {"type": "alauda.io/ImageStream", "max": {"alauda.io/image-tags": value}}


def images(value: Any) -> dict[str, Any]:
    return {"type": "alauda.io/ImageStream", "max": {"alauda.io/images": value}}


def storage(value: Any) -> dict[str, Any]:
    return {"type": "alauda.io/Image", "max": {"storage": value}}


def test_no_limit_ranges_means_no_limits() -> None:
    result = effective_limits([])
    assert result == EffectiveLimits()
    for key in LIMIT_KEYS:
        assert result.get(key) is None


def test_one_limit_range_sets_all_three() -> None:
    lr = limit_range(
        "lr",
        storage("1Gi"),
        {
            "type": "alauda.io/ImageStream",
            "max": {"alauda.io/image-tags": "20", "alauda.io/images": "50"},
        },
    )
    result = effective_limits([lr])
    assert result.get(IMAGE_STORAGE) == Limit(Decimal(1073741824), "lr")
    assert result.get(STREAM_TAGS) == Limit(Decimal(20), "lr")
    assert result.get(STREAM_IMAGES) == Limit(Decimal(50), "lr")
    assert result.problems == ()


def test_smallest_max_wins_across_limit_ranges_per_resource() -> None:
    result = effective_limits(
        [
            limit_range("a", tags("20"), images("5"), storage("1Gi")),
            limit_range("b", tags("10"), images("50"), storage("1500M")),
        ]
    )
    assert result.get(STREAM_TAGS) == Limit(Decimal(10), "b")
    assert result.get(STREAM_IMAGES) == Limit(Decimal(5), "a")
    assert result.get(IMAGE_STORAGE) == Limit(Decimal(1073741824), "a")


def test_smallest_max_wins_within_one_limit_range() -> None:
    result = effective_limits([limit_range("a", tags("20"), tags("7"), tags("9"))])
    assert result.get(STREAM_TAGS) == Limit(Decimal(7), "a")


def test_units_are_compared_as_quantities() -> None:
    # 1Gi = 1073741824 > 1G = 1000000000 > 999M
    result = effective_limits(
        [
            limit_range("gi", storage("1Gi")),
            limit_range("g", storage("1G")),
            limit_range("m", storage("999M")),
        ]
    )
    assert result.get(IMAGE_STORAGE) == Limit(Decimal(999_000_000), "m")


def test_tie_reports_the_name_that_sorts_first_whatever_the_order() -> None:
    a, b = limit_range("a", tags("10")), limit_range("b", tags("10"))
    assert effective_limits([b, a]).get(STREAM_TAGS) == Limit(Decimal(10), "a")
    assert effective_limits([a, b]).get(STREAM_TAGS) == Limit(Decimal(10), "a")


def test_non_alauda_items_and_other_fields_are_ignored() -> None:
    result = effective_limits(
        [
            limit_range(
                "native",
                {"type": "Container", "max": {"cpu": "2", "memory": "1Gi"}},
                {"type": "PersistentVolumeClaim", "max": {"storage": "1Ki"}},
                {"type": "Pod", "max": {"alauda.io/gpu": "1"}},
            ),
            limit_range(
                "mins", {"type": "alauda.io/ImageStream", "min": {"alauda.io/images": "3"}}
            ),
        ]
    )
    assert result == EffectiveLimits()


def test_a_zero_max_is_a_limit() -> None:
    assert effective_limits([limit_range("z", tags("0"))]).get(STREAM_TAGS) == Limit(
        Decimal(0), "z"
    )


def test_fractional_storage_is_kept() -> None:
    result = effective_limits([limit_range("f", storage("1.1Gi"))])
    assert result.get(IMAGE_STORAGE) == Limit(Decimal("1181116006.4"), "f")


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (
            {"type": "alauda.io/Foo", "max": {"alauda.io/images": "1"}},
            'LimitRange "bad": spec.limits[0].type: Unsupported value: "alauda.io/Foo": '
            'supported values: "alauda.io/Image", "alauda.io/ImageStream"',
        ),
        (
            {"type": "alauda.io/Image", "max": {"alauda.io/images": "1"}},
            'LimitRange "bad": spec.limits[0].max[alauda.io/images]: Unsupported value: '
            '"alauda.io/images": supported values: "storage"',
        ),
        (
            stream_item(storage="1Gi"),
            'LimitRange "bad": spec.limits[0].max[storage]: Unsupported value: "storage": '
            'supported values: "alauda.io/image-tags", "alauda.io/images"',
        ),
        (
            tags("-1"),
            'LimitRange "bad": spec.limits[0].max[alauda.io/image-tags]: Invalid value: "-1": '
            "must be greater than or equal to 0",
        ),
        (
            images("1.5"),
            'LimitRange "bad": spec.limits[0].max[alauda.io/images]: Invalid value: "1.5": '
            "must be an integer",
        ),
        (
            storage("lots"),
            'LimitRange "bad": spec.limits[0].max[storage]: Invalid value: "lots": '
            "must be a quantity (for example 10, 500M, 1Gi)",
        ),
        (
            storage(None),
            'LimitRange "bad": spec.limits[0].max[storage]: Invalid value: null: '
            "must be a quantity (for example 10, 500M, 1Gi)",
        ),
        (
            {"type": "alauda.io/Image", "max": ["storage"]},
            'LimitRange "bad": spec.limits[0].max: Invalid value: ["storage"]: '
            "must be a map of resource names to quantities",
        ),
    ],
)
def test_malformed_entries_are_skipped_and_reported(item: dict[str, Any], expected: str) -> None:
    result = effective_limits([limit_range("bad", item)])
    assert result.limits == {}
    assert [str(problem) for problem in result.problems] == [expected]


def test_a_malformed_entry_does_not_hide_good_ones() -> None:
    result = effective_limits(
        [
            limit_range(
                "bad", stream_item(**{"alauda.io/image-tags": "x", "alauda.io/images": "4"})
            ),
            limit_range("good", tags("30")),
        ]
    )
    assert result.get(STREAM_TAGS) == Limit(Decimal(30), "good")
    assert result.get(STREAM_IMAGES) == Limit(Decimal(4), "bad")
    assert len(result.problems) == 1
    assert result.problems[0].name == "bad"
    assert result.problems[0].kind == "LimitRange"
    assert result.problems[0].error.path == "spec.limits[0].max[alauda.io/image-tags]"


@pytest.mark.parametrize(
    "obj",
    [
        {},
        {"spec": None},
        {"spec": {"limits": None}},
        {"spec": {"limits": {"type": "alauda.io/Image"}}},
        {"spec": {"limits": [None, 3, "alauda.io/Image", []]}},
        {"spec": {"limits": [{"type": "alauda.io/Image"}]}},
        {"spec": {"limits": [{"type": "alauda.io/Image", "max": None}]}},
        {"spec": {"limits": [{"type": None, "max": {"storage": "1"}}]}},
        {"spec": {"limits": [{"type": 5, "max": {"storage": "1"}}]}},
    ],
)
def test_shapeless_limit_ranges_do_not_crash(obj: dict[str, Any]) -> None:
    assert effective_limits([obj]) == EffectiveLimits()


def test_non_mapping_limit_ranges_are_ignored() -> None:
    result = effective_limits([None, "lr", limit_range("ok", tags("3"))])  # type: ignore[list-item]
    assert result.get(STREAM_TAGS) == Limit(Decimal(3), "ok")


def test_missing_name_is_reported_as_empty() -> None:
    assert effective_limits([limit_range(None, tags("3"))]).get(STREAM_TAGS) == Limit(
        Decimal(3), ""
    )


# --- property: several LimitRanges, the minimum wins -----------------------------------

quantities = st.one_of(
    st.integers(0, 10**6).map(str),
    st.integers(0, 1000).map(lambda n: f"{n}Ki"),
    st.integers(0, 1000).map(lambda n: f"{n}k"),
)


@st.composite
def limit_range_sets(draw: st.DrawFn) -> list[tuple[str, list[tuple[str, str, str]]]]:
    names = draw(
        st.lists(st.text("abcdef", min_size=1, max_size=4), min_size=1, max_size=6, unique=True)
    )
    keys = st.sampled_from(LIMIT_KEYS)
    return [
        (
            name,
            draw(st.lists(st.tuples(keys, quantities).map(lambda kq: (*kq[0], kq[1])), max_size=5)),
        )
        for name in names
    ]


@given(limit_range_sets(), st.randoms(use_true_random=False))
def test_effective_max_is_the_minimum_over_all_limit_ranges(
    sets: list[tuple[str, list[tuple[str, str, str]]]], rnd: Any
) -> None:
    objs = [
        limit_range(name, *({"type": t, "max": {res: q}} for t, res, q in entries))
        for name, entries in sets
    ]
    rnd.shuffle(objs)
    result = effective_limits(objs)
    assert result.problems == ()
    for key in LIMIT_KEYS:
        candidates = [
            (Decimal(_as_int(q)), name)
            for name, entries in sets
            for t, res, q in entries
            if (t, res) == key
        ]
        if not candidates:
            assert result.get(key) is None
        else:
            value, name = min(candidates)
            assert result.get(key) == Limit(value, name)


def _as_int(quantity: str) -> int:
    """Independent arithmetic for the generated quantity forms."""
    if quantity.endswith("Ki"):
        return int(quantity[:-2]) * 1024
    if quantity.endswith("k"):
        return int(quantity[:-1]) * 1000
    return int(quantity)


# --- a broken entry never hides the entries after it -----------------------------------


@pytest.mark.parametrize(
    "broken",
    [
        "not an item",
        {"type": "alauda.io/Unknown", "max": {"storage": "1"}},
        {"type": "alauda.io/ImageStream"},  # no max
        {"type": "alauda.io/ImageStream", "max": "3"},
        {"type": "alauda.io/ImageStream", "max": {"storage": "1"}},  # not for this type
        {"type": "alauda.io/ImageStream", "max": {"alauda.io/image-tags": "many"}},
    ],
)
def test_a_broken_entry_does_not_hide_the_next_one(broken: Any) -> None:
    limits = effective_limits([limit_range("lr", broken, tags("3"), images("4"))])
    assert limits.get(STREAM_TAGS) == Limit(Decimal(3), "lr")
    assert limits.get(STREAM_IMAGES) == Limit(Decimal(4), "lr")


def test_a_broken_value_does_not_hide_the_next_resource_of_the_item() -> None:
    item = stream_item(**{"alauda.io/image-tags": "-1", "alauda.io/images": "4"})
    limits = effective_limits([limit_range("lr", item)])
    assert limits.get(STREAM_TAGS) is None
    assert limits.get(STREAM_IMAGES) == Limit(Decimal(4), "lr")
    assert len(limits.problems) == 1
