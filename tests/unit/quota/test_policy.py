"""Apply-time validation of LimitRanges and ResourceQuotas."""

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quota.fielderrors import ErrorType, FieldError
from quota.limits import effective_limits
from quota.policy import (
    invalid_message,
    names_alauda,
    validate_limit_range,
    validate_policy,
    validate_resource_quota,
)


def lr(*items: Any, name: str = "x") -> dict[str, Any]:
    return {"kind": "LimitRange", "metadata": {"name": name}, "spec": {"limits": list(items)}}


def quota(hard: Any, **spec: Any) -> dict[str, Any]:
    return {"kind": "ResourceQuota", "metadata": {"name": "q"}, "spec": {"hard": hard, **spec}}


def messages(errors: list[FieldError]) -> list[str]:
    return [str(error) for error in errors]


IMAGE = "alauda.io/Image"
STREAM = "alauda.io/ImageStream"

# --- names_alauda -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (lr({"type": IMAGE, "max": {"storage": "1Gi"}}), True),
        (lr({"type": "alauda.io/Whatever"}), True),
        (lr({"type": "Container", "max": {"cpu": "1"}}), False),
        (lr({"type": "Container", "min": {"alauda.io/images": "1"}}), True),
        (lr({"type": "Container", "default": {"alauda.io/gpu": "1"}}), True),
        (lr({"type": "Container", "defaultRequest": {"alauda.io/gpu": "1"}}), True),
        (lr({"type": "Container", "maxLimitRequestRatio": {"alauda.io/gpu": "1"}}), True),
        (lr({"type": "PersistentVolumeClaim", "max": {"storage": "1Gi"}}), False),
        (lr(None, "x", {"type": None, "max": None}), False),
        (lr(), False),
        ({"kind": "LimitRange"}, False),
        ({"kind": "LimitRange", "spec": {"limits": "alauda.io/Image"}}, False),
        (quota({"alauda.io/imagestreams": "5"}), True),
        (quota({"alauda.io/unknown": "5"}), True),
        (quota({"pods": "5", "count/imagestreams.image.alauda.io": "5"}), False),
        (quota(None), False),
        ({"kind": "ResourceQuota"}, False),
        ({"kind": "ConfigMap", "spec": {"hard": {"alauda.io/imagestreams": "1"}}}, False),
        ({}, False),
    ],
)
def test_names_alauda(obj: dict[str, Any], expected: bool) -> None:
    assert names_alauda(obj) is expected


def test_names_alauda_with_explicit_kind() -> None:
    obj = {"spec": {"hard": {"alauda.io/imagestreams": "1"}}}
    assert names_alauda(obj, "ResourceQuota")
    assert not names_alauda(obj, "LimitRange")


# --- LimitRange -------------------------------------------------------------------------


def test_valid_limit_range() -> None:
    obj = lr(
        {"type": "Container", "max": {"cpu": "2"}, "default": {"cpu": "1"}},
        {"type": IMAGE, "max": {"storage": "1Gi"}, "min": {"storage": "0"}},
        {"type": STREAM, "max": {"alauda.io/image-tags": "20", "alauda.io/images": "50"}},
        {"type": STREAM, "min": {"alauda.io/images": "1"}, "max": {"alauda.io/images": "1"}},
        {"type": IMAGE, "max": {"storage": "1.5Gi"}},
        {"type": IMAGE, "max": {"storage": 1024}},
        {"type": IMAGE},
        {"type": STREAM, "max": None, "default": {}},
    )
    assert validate_limit_range(obj) == []
    assert validate_policy(obj) == []


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (
            {"type": STREAM, "max": {"alauda.io/images": "-1"}},
            'spec.limits[0].max[alauda.io/images]: Invalid value: "-1": '
            "must be greater than or equal to 0",
        ),
        (
            {"type": STREAM, "min": {"alauda.io/image-tags": "ten"}},
            'spec.limits[0].min[alauda.io/image-tags]: Invalid value: "ten": '
            "must be a quantity (for example 10, 500M, 1Gi)",
        ),
        (
            {"type": STREAM, "max": {"alauda.io/images": "2.5"}},
            'spec.limits[0].max[alauda.io/images]: Invalid value: "2.5": must be an integer',
        ),
        (
            {"type": STREAM, "max": {"alauda.io/images": "500m"}},
            'spec.limits[0].max[alauda.io/images]: Invalid value: "500m": must be an integer',
        ),
        (
            {"type": IMAGE, "max": {"storage": "-1Gi"}},
            'spec.limits[0].max[storage]: Invalid value: "-1Gi": '
            "must be greater than or equal to 0",
        ),
        (
            {"type": IMAGE, "max": {"alauda.io/images": "1"}},
            'spec.limits[0].max[alauda.io/images]: Unsupported value: "alauda.io/images": '
            'supported values: "storage"',
        ),
        (
            {"type": IMAGE, "min": {"memory": "1"}},
            'spec.limits[0].min[memory]: Unsupported value: "memory": supported values: "storage"',
        ),
        (
            {"type": STREAM, "max": {"storage": "1Gi"}},
            'spec.limits[0].max[storage]: Unsupported value: "storage": '
            'supported values: "alauda.io/image-tags", "alauda.io/images"',
        ),
        (
            {"type": STREAM, "max": {"alauda.io/imagestreams": "1"}},
            "spec.limits[0].max[alauda.io/imagestreams]: Unsupported value: "
            '"alauda.io/imagestreams": supported values: '
            '"alauda.io/image-tags", "alauda.io/images"',
        ),
        (
            {"type": "alauda.io/Images", "max": {"storage": "1"}},
            'spec.limits[0].type: Unsupported value: "alauda.io/Images": '
            'supported values: "alauda.io/Image", "alauda.io/ImageStream"',
        ),
        (
            {"type": IMAGE, "default": {"storage": "1Gi"}},
            "spec.limits[0].default: Forbidden: may not be specified when `type` is "
            "'alauda.io/Image'",
        ),
        (
            {"type": STREAM, "defaultRequest": {"alauda.io/images": "1"}},
            "spec.limits[0].defaultRequest: Forbidden: may not be specified when `type` is "
            "'alauda.io/ImageStream'",
        ),
        (
            {"type": STREAM, "maxLimitRequestRatio": {"alauda.io/images": "2"}},
            "spec.limits[0].maxLimitRequestRatio: Forbidden: may not be specified when `type` is "
            "'alauda.io/ImageStream'",
        ),
        (
            {"type": STREAM, "max": ["alauda.io/images"]},
            'spec.limits[0].max: Invalid value: ["alauda.io/images"]: '
            "must be a map of resource names to quantities",
        ),
        (
            {"type": STREAM, "min": "3"},
            'spec.limits[0].min: Invalid value: "3": must be a map of resource names to quantities',
        ),
        (
            {"type": STREAM, "min": {"alauda.io/images": "5"}, "max": {"alauda.io/images": "3"}},
            'spec.limits[0].min[alauda.io/images]: Invalid value: "5": '
            "min value 5 is greater than max value 3",
        ),
        (
            {"type": IMAGE, "min": {"storage": "2Gi"}, "max": {"storage": "1500Mi"}},
            'spec.limits[0].min[storage]: Invalid value: "2Gi": '
            "min value 2Gi is greater than max value 1500Mi",
        ),
        (
            {"type": "Container", "max": {"alauda.io/images": "1"}},
            'spec.limits[0].max[alauda.io/images]: Invalid value: "alauda.io/images": '
            "only valid for type 'alauda.io/ImageStream'",
        ),
        (
            {"type": "Pod", "min": {"alauda.io/image-tags": "1"}},
            'spec.limits[0].min[alauda.io/image-tags]: Invalid value: "alauda.io/image-tags": '
            "only valid for type 'alauda.io/ImageStream'",
        ),
        (
            {"max": {"alauda.io/imagestreams": "1"}},
            'spec.limits[0].max[alauda.io/imagestreams]: Invalid value: "alauda.io/imagestreams": '
            "only valid in a ResourceQuota",
        ),
        (
            {"type": "Container", "max": {"alauda.io/image-storage": "1Gi"}},
            "spec.limits[0].max[alauda.io/image-storage]: Invalid value: "
            '"alauda.io/image-storage": only valid in a ResourceQuota',
        ),
    ],
)
def test_limit_range_errors(item: dict[str, Any], expected: str) -> None:
    assert messages(validate_limit_range(lr(item))) == [expected]


def test_min_equal_to_max_and_min_below_max_are_fine() -> None:
    for low, high in (("3", "3"), ("1Gi", "1024Mi"), ("1", "2Ki")):
        item = {"type": IMAGE, "min": {"storage": low}, "max": {"storage": high}}
        assert validate_limit_range(lr(item)) == []


def test_min_greater_than_max_is_not_reported_when_either_is_broken() -> None:
    item = {"type": STREAM, "min": {"alauda.io/images": "5"}, "max": {"alauda.io/images": "x"}}
    assert [e.path for e in validate_limit_range(lr(item))] == [
        "spec.limits[0].max[alauda.io/images]"
    ]


def test_native_types_may_name_other_alauda_resources() -> None:
    assert validate_limit_range(lr({"type": "Container", "max": {"alauda.io/gpu": "1"}})) == []


def test_errors_carry_paths_types_and_values() -> None:
    errors = validate_limit_range(
        lr(
            {"type": "Container", "max": {"cpu": "1"}},
            {"type": STREAM, "max": {"alauda.io/images": "-3", "alauda.io/image-tags": "x"}},
        )
    )
    assert errors == [
        FieldError(
            "spec.limits[1].max[alauda.io/images]",
            ErrorType.INVALID,
            "-3",
            "must be greater than or equal to 0",
        ),
        FieldError(
            "spec.limits[1].max[alauda.io/image-tags]",
            ErrorType.INVALID,
            "x",
            "must be a quantity (for example 10, 500M, 1Gi)",
        ),
    ]


@pytest.mark.parametrize(
    "obj",
    [
        {},
        {"spec": None},
        {"spec": {"limits": None}},
        {"spec": {"limits": "x"}},
        {"spec": {"limits": [None, 1, "a", []]}},
        {"spec": {"limits": [{"type": 3}]}},
        {"spec": {"limits": [{"type": "Container", "max": "x"}]}},
    ],
)
def test_shapeless_limit_ranges_are_left_to_the_api_server(obj: dict[str, Any]) -> None:
    assert validate_limit_range(obj) == []


# --- ResourceQuota ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "hard",
    [
        {"alauda.io/imagestreams": "5"},
        {"alauda.io/imagestreams": "0"},
        {"alauda.io/imagestreams": "1k"},
        {"alauda.io/imagestreams": 5},
        {"alauda.io/image-storage": "1Gi"},
        {"alauda.io/image-storage": "0"},
        {"alauda.io/image-storage": "1.5Gi", "alauda.io/imagestreams": "3"},
        {"pods": "-1", "cpu": "x", "count/imagestreams.image.alauda.io": "2"},
        {},
        None,
    ],
)
def test_valid_resource_quotas(hard: Any) -> None:
    assert validate_resource_quota(quota(hard)) == []


@pytest.mark.parametrize(
    ("hard", "expected"),
    [
        (
            {"alauda.io/imagestreams": "-1"},
            'spec.hard[alauda.io/imagestreams]: Invalid value: "-1": '
            "must be greater than or equal to 0",
        ),
        (
            {"alauda.io/imagestreams": "1.5"},
            'spec.hard[alauda.io/imagestreams]: Invalid value: "1.5": must be an integer',
        ),
        (
            {"alauda.io/imagestreams": "five"},
            'spec.hard[alauda.io/imagestreams]: Invalid value: "five": '
            "must be a quantity (for example 10, 500M, 1Gi)",
        ),
        (
            {"alauda.io/imagestreams": None},
            "spec.hard[alauda.io/imagestreams]: Invalid value: null: "
            "must be a quantity (for example 10, 500M, 1Gi)",
        ),
        (
            {"alauda.io/image-storage": "-1Mi"},
            'spec.hard[alauda.io/image-storage]: Invalid value: "-1Mi": '
            "must be greater than or equal to 0",
        ),
        (
            {"alauda.io/image-storage": "lots"},
            'spec.hard[alauda.io/image-storage]: Invalid value: "lots": '
            "must be a quantity (for example 10, 500M, 1Gi)",
        ),
        (
            {"alauda.io/images": "5"},
            'spec.hard[alauda.io/images]: Unsupported value: "alauda.io/images": '
            'supported values: "alauda.io/imagestreams", "alauda.io/image-storage"',
        ),
        (
            {"alauda.io/ImageStreams": "5"},
            'spec.hard[alauda.io/ImageStreams]: Unsupported value: "alauda.io/ImageStreams": '
            'supported values: "alauda.io/imagestreams", "alauda.io/image-storage"',
        ),
    ],
)
def test_resource_quota_errors(hard: dict[str, Any], expected: str) -> None:
    assert messages(validate_resource_quota(quota(hard))) == [expected]


def test_scoped_quota_cannot_limit_imagestreams() -> None:
    hard = {"alauda.io/imagestreams": "5"}
    assert messages(validate_resource_quota(quota(hard, scopes=["BestEffort"]))) == [
        "spec.scopes: Forbidden: alauda.io/imagestreams cannot be limited by a scoped quota: "
        "ImageStreams have no scopes"
    ]
    selector = {"matchExpressions": [{"scopeName": "PriorityClass", "operator": "Exists"}]}
    assert [e.path for e in validate_resource_quota(quota(hard, scopeSelector=selector))] == [
        "spec.scopeSelector"
    ]
    assert validate_resource_quota(quota({"pods": "1"}, scopes=["BestEffort"])) == []
    assert validate_resource_quota(quota(hard, scopes=[])) == []


def test_scoped_quota_cannot_limit_image_storage() -> None:
    hard = {"alauda.io/image-storage": "1Gi", "alauda.io/imagestreams": "5"}
    assert messages(validate_resource_quota(quota(hard, scopes=["BestEffort"]))) == [
        "spec.scopes: Forbidden: alauda.io/imagestreams, alauda.io/image-storage cannot be "
        "limited by a scoped quota: ImageStreams and Images have no scopes"
    ]


def test_validate_policy_dispatches_on_kind() -> None:
    bad_quota = quota({"alauda.io/imagestreams": "-1"})
    assert len(validate_policy(bad_quota)) == 1
    assert validate_policy(bad_quota, "LimitRange") == []
    assert messages(validate_policy({"kind": "Pod"})) == [
        'kind: Unsupported value: "Pod": supported values: "LimitRange", "ResourceQuota"'
    ]


# --- messages ---------------------------------------------------------------------------


def test_invalid_message_single() -> None:
    errors = validate_limit_range(lr({"type": STREAM, "max": {"alauda.io/images": "-1"}}))
    assert invalid_message("LimitRange", "x", errors) == (
        'LimitRange "x" is invalid: spec.limits[0].max[alauda.io/images]: Invalid value: "-1": '
        "must be greater than or equal to 0"
    )


def test_invalid_message_joins_several() -> None:
    errors = validate_resource_quota(
        quota({"alauda.io/imagestreams": "-1", "alauda.io/x": "1"}, scopes=["Terminating"])
    )
    assert invalid_message("ResourceQuota", "q", errors) == (
        'ResourceQuota "q" is invalid: '
        'spec.hard[alauda.io/imagestreams]: Invalid value: "-1": '
        "must be greater than or equal to 0; "
        'spec.hard[alauda.io/x]: Unsupported value: "alauda.io/x": '
        'supported values: "alauda.io/imagestreams", "alauda.io/image-storage"; '
        "spec.scopes: Forbidden: alauda.io/imagestreams cannot be limited by a scoped quota: "
        "ImageStreams have no scopes"
    )


def test_invalid_message_needs_errors() -> None:
    with pytest.raises(ValueError, match=r"^invalid_message needs at least one error$"):
        invalid_message("LimitRange", "x", [])


# --- property: admission skips exactly the max entries the validator rejects -----------

values = st.sampled_from(["1", "0", "20", "1Gi", "1.5", "-1", "x", "500m", None, 3, "1e3"])
resources = st.sampled_from(["storage", "alauda.io/images", "alauda.io/image-tags", "cpu"])
# Native types are left out: their alauda.io entries are refused at apply time but are
# simply not limits at evaluation time, so they are no evaluation problem.
types = st.sampled_from([IMAGE, STREAM, "alauda.io/Bogus"])


@given(st.lists(st.tuples(types, st.dictionaries(resources, values, max_size=3)), max_size=5))
def test_evaluation_problems_match_validation_errors_on_max(
    items: list[tuple[str, dict[str, Any]]],
) -> None:
    obj = lr(*({"type": t, "max": m} for t, m in items))
    validated = {
        str(error)
        for error in validate_limit_range(obj)
        if ".max" in error.path or error.path.endswith(".type")
    }
    evaluated = {str(problem.error) for problem in effective_limits([obj]).problems}
    assert evaluated == validated


# --- every entry is judged, whatever comes before it ------------------------------------


def test_an_alauda_item_after_a_non_object_is_still_seen() -> None:
    obj = lr("junk", {"type": STREAM, "max": {"alauda.io/image-tags": "3"}})
    assert names_alauda(obj, "LimitRange")


def test_errors_after_a_bad_value_and_an_unknown_resource_are_all_reported() -> None:
    item = {"type": STREAM, "max": {"alauda.io/images": "-1", "storage": "1"}, "min": "3"}
    paths = [error.path for error in validate_limit_range(lr(item))]
    assert paths == [
        "spec.limits[0].max[alauda.io/images]",
        "spec.limits[0].max[storage]",
        "spec.limits[0].min",
    ]


def test_a_valid_item_after_a_non_object_is_still_validated() -> None:
    bad = {"type": STREAM, "max": {"alauda.io/images": "-1"}}
    assert [e.path for e in validate_limit_range(lr("junk", bad))] == [
        "spec.limits[1].max[alauda.io/images]"
    ]


def test_quota_entries_after_native_and_unknown_ones_are_still_validated() -> None:
    hard = {"pods": "1", "alauda.io/images": "1", "alauda.io/imagestreams": "-1"}
    paths = [e.path for e in validate_resource_quota(quota(hard))]
    assert paths == ["spec.hard[alauda.io/images]", "spec.hard[alauda.io/imagestreams]"]


def test_min_without_max_is_fine() -> None:
    assert validate_limit_range(lr({"type": STREAM, "min": {"alauda.io/images": "2"}})) == []


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({"scopes": ["BestEffort"]}, "spec.scopes"),
        (
            {"scopes": [], "scopeSelector": {"matchExpressions": [{"scopeName": "x"}]}},
            "spec.scopeSelector",
        ),
    ],
)
def test_a_scoped_quota_names_the_field_that_scopes_it(spec: dict[str, Any], path: str) -> None:
    errors = validate_resource_quota(quota({"alauda.io/imagestreams": "1"}, **spec))
    assert [error.path for error in errors] == [path]


def test_invalid_message_needs_an_error() -> None:
    with pytest.raises(ValueError, match=r"^invalid_message needs at least one error$"):
        invalid_message("LimitRange", "x", [])


def test_a_max_that_is_not_a_map_does_not_hide_errors_in_min() -> None:
    item = {"type": STREAM, "max": "3", "min": {"alauda.io/images": "-1"}}
    assert [e.path for e in validate_limit_range(lr(item))] == [
        "spec.limits[0].max",
        "spec.limits[0].min[alauda.io/images]",
    ]
