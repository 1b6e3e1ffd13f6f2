import copy
from typing import Any

import jsonpatch
import pytest

from webhook.pullsecrets.names import ANNOTATION_PULL_SECRET_REF, OPT_OUT_KEY
from webhook.pullsecrets.serviceaccount_patch import (
    add_pull_secret_patch,
    guard_resource_version,
    is_opted_out,
    remove_pull_secret_patch,
    serviceaccount_mutation,
)

OURS = "builder-dockercfg"
REF_PATH = "/metadata/annotations/image.alauda.io~1internal-registry-pull-secret-ref"
ABSENT = object()


def make_sa(pull_secrets: object = ABSENT, annotations: object = ABSENT) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "builder", "namespace": "team-a"}
    if annotations is not ABSENT:
        metadata["annotations"] = annotations
    sa: dict[str, Any] = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata}
    if pull_secrets is not ABSENT:
        sa["imagePullSecrets"] = pull_secrets
    return sa


def apply(sa: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = jsonpatch.apply_patch(sa, ops)
    return result


ADD_CASES: dict[str, tuple[object, list[object]]] = {
    # name: (imagePullSecrets before, expected after)
    "absent": (ABSENT, [{"name": OURS}]),
    "null": (None, [{"name": OURS}]),
    "empty": ([], [{"name": OURS}]),
    "not a list": ("builder-dockercfg", [{"name": OURS}]),
    "others": ([{"name": "a"}, {"name": "b"}], [{"name": "a"}, {"name": "b"}, {"name": OURS}]),
    "present once": ([{"name": "a"}, {"name": OURS}], [{"name": "a"}, {"name": OURS}]),
    "present first": ([{"name": OURS}, {"name": "a"}], [{"name": OURS}, {"name": "a"}]),
    "present twice": (
        [{"name": OURS}, {"name": "a"}, {"name": OURS}],
        [{"name": OURS}, {"name": "a"}],
    ),
    "present thrice, first later": (
        [{"name": "a"}, {"name": OURS}, {"name": "b"}, {"name": OURS}, {"name": OURS}],
        [{"name": "a"}, {"name": OURS}, {"name": "b"}],
    ),
    "non-dict entries kept": (
        ["x", 5, None, {"noname": 1}, {"name": "a"}],
        ["x", 5, None, {"noname": 1}, {"name": "a"}, {"name": OURS}],
    ),
    "similar names are not ours": (
        [{"name": OURS + "-x"}, {"name": OURS.upper()}],
        [{"name": OURS + "-x"}, {"name": OURS.upper()}, {"name": OURS}],
    ),
}


@pytest.mark.parametrize(("before", "after"), ADD_CASES.values(), ids=ADD_CASES.keys())
def test_add_patch_image_pull_secrets(before: object, after: list[object]) -> None:
    sa = make_sa(before)
    original = copy.deepcopy(sa)
    ops = add_pull_secret_patch(sa, OURS)
    assert sa == original, "builder must not mutate its input"
    result = apply(sa, ops)
    assert result["imagePullSecrets"] == after
    assert result["metadata"]["annotations"] == {ANNOTATION_PULL_SECRET_REF: OURS}
    assert add_pull_secret_patch(result, OURS) == []


ANNOTATION_CASES: dict[str, tuple[object, dict[str, str]]] = {
    "absent": (ABSENT, {ANNOTATION_PULL_SECRET_REF: OURS}),
    "null": (None, {ANNOTATION_PULL_SECRET_REF: OURS}),
    "empty": ({}, {ANNOTATION_PULL_SECRET_REF: OURS}),
    "not a map": ("x", {ANNOTATION_PULL_SECRET_REF: OURS}),
    "others kept": (
        {"a/b": "1", "c~d": "2"},
        {"a/b": "1", "c~d": "2", ANNOTATION_PULL_SECRET_REF: OURS},
    ),
    "stale value": (
        {ANNOTATION_PULL_SECRET_REF: "old", "x": "y"},
        {ANNOTATION_PULL_SECRET_REF: OURS, "x": "y"},
    ),
}


@pytest.mark.parametrize(
    ("before", "after"), ANNOTATION_CASES.values(), ids=ANNOTATION_CASES.keys()
)
def test_add_patch_annotation(before: object, after: dict[str, str]) -> None:
    sa = make_sa([{"name": OURS}], before)
    result = apply(sa, add_pull_secret_patch(sa, OURS))
    assert result["metadata"]["annotations"] == after
    assert result["imagePullSecrets"] == [{"name": OURS}]
    assert add_pull_secret_patch(result, OURS) == []


@pytest.mark.parametrize("metadata", [ABSENT, None])
def test_add_patch_without_metadata(metadata: object) -> None:
    sa: dict[str, Any] = {"kind": "ServiceAccount"}
    if metadata is not ABSENT:
        sa["metadata"] = metadata
    result = apply(sa, add_pull_secret_patch(sa, OURS))
    assert result["metadata"] == {"annotations": {ANNOTATION_PULL_SECRET_REF: OURS}}
    assert result["imagePullSecrets"] == [{"name": OURS}]


def test_add_patch_exact_ops_for_fresh_sa() -> None:
    assert add_pull_secret_patch(make_sa(), OURS) == [
        {"op": "add", "path": "/imagePullSecrets", "value": [{"name": OURS}]},
        {"op": "add", "path": "/metadata/annotations", "value": {ANNOTATION_PULL_SECRET_REF: OURS}},
    ]


def test_add_patch_exact_ops_append_and_escaped_annotation_path() -> None:
    sa = make_sa([{"name": "a"}], {"x": "y"})
    assert add_pull_secret_patch(sa, OURS) == [
        {"op": "add", "path": "/imagePullSecrets/-", "value": {"name": OURS}},
        {"op": "add", "path": REF_PATH, "value": OURS},
    ]


def test_add_patch_nothing_to_do() -> None:
    sa = make_sa([{"name": "a"}, {"name": OURS}], {ANNOTATION_PULL_SECRET_REF: OURS})
    assert add_pull_secret_patch(sa, OURS) == []


def test_add_patch_rejects_empty_secret_name() -> None:
    with pytest.raises(ValueError):
        add_pull_secret_patch(make_sa(), "")


def test_duplicate_removal_is_guarded_against_a_changed_list() -> None:
    sa = make_sa(
        [{"name": OURS}, {"name": "a"}, {"name": OURS}], {ANNOTATION_PULL_SECRET_REF: OURS}
    )
    ops = add_pull_secret_patch(sa, OURS)
    assert ops == [
        {"op": "test", "path": "/imagePullSecrets/2", "value": {"name": OURS}},
        {"op": "remove", "path": "/imagePullSecrets/2"},
    ]
    live = copy.deepcopy(sa)
    live["imagePullSecrets"].insert(2, {"name": "user-added"})
    with pytest.raises(jsonpatch.JsonPatchTestFailed):
        apply(live, ops)


REMOVE_CASES: dict[str, tuple[object, object, object, object]] = {
    # name: (imagePullSecrets before, annotations before, secrets after, annotations after)
    "ours only": ([{"name": OURS}], {ANNOTATION_PULL_SECRET_REF: OURS}, [], {}),
    "keeps others in order": (
        [{"name": "a"}, {"name": OURS}, {"name": "b"}, {"name": OURS}],
        {ANNOTATION_PULL_SECRET_REF: OURS, "keep": "me"},
        [{"name": "a"}, {"name": "b"}],
        {"keep": "me"},
    ),
    "annotation with another value is still ours": (
        ["junk", {"name": "a"}],
        {ANNOTATION_PULL_SECRET_REF: "something-else"},
        ["junk", {"name": "a"}],
        {},
    ),
    "entry without annotation": ([{"name": OURS}], ABSENT, [], ABSENT),
    "annotations null": ([{"name": OURS}, {"name": "a"}], None, [{"name": "a"}], None),
    "field null": (None, {ANNOTATION_PULL_SECRET_REF: OURS}, None, {}),
    "field absent": (ABSENT, {ANNOTATION_PULL_SECRET_REF: OURS}, ABSENT, {}),
}


@pytest.mark.parametrize(
    ("secrets", "annotations", "secrets_after", "annotations_after"),
    REMOVE_CASES.values(),
    ids=REMOVE_CASES.keys(),
)
def test_remove_patch(
    secrets: object, annotations: object, secrets_after: object, annotations_after: object
) -> None:
    sa = make_sa(secrets, annotations)
    original = copy.deepcopy(sa)
    ops = remove_pull_secret_patch(sa, OURS)
    assert sa == original
    result = apply(sa, ops)
    assert result.get("imagePullSecrets", ABSENT) == secrets_after
    assert result["metadata"].get("annotations", ABSENT) == annotations_after
    assert remove_pull_secret_patch(result, OURS) == []


@pytest.mark.parametrize(
    "sa",
    [
        make_sa(),
        make_sa(None, None),
        make_sa([{"name": "a"}], {"x": "y"}),
        {"kind": "ServiceAccount"},
        {"metadata": None, "imagePullSecrets": "junk"},
    ],
)
def test_remove_patch_nothing_to_do(sa: dict[str, Any]) -> None:
    assert remove_pull_secret_patch(sa, OURS) == []


def test_add_then_remove_restores_user_entries() -> None:
    sa = make_sa([{"name": "a"}, {"name": "b"}], {"x": "y"})
    added = apply(sa, add_pull_secret_patch(sa, OURS))
    removed = apply(added, remove_pull_secret_patch(added, OURS))
    assert removed == sa


def test_guard_resource_version() -> None:
    sa = make_sa()
    sa["metadata"]["resourceVersion"] = "42"
    ops = add_pull_secret_patch(sa, OURS)
    guarded = guard_resource_version(ops, sa)
    assert guarded[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "42"}
    assert guarded[1:] == ops
    assert apply(sa, guarded)["imagePullSecrets"] == [{"name": OURS}]
    stale = copy.deepcopy(sa)
    stale["metadata"]["resourceVersion"] = "43"
    with pytest.raises(jsonpatch.JsonPatchTestFailed):
        apply(stale, guarded)


def test_guard_resource_version_passthrough() -> None:
    sa = make_sa()
    ops = add_pull_secret_patch(sa, OURS)
    assert guard_resource_version(ops, sa) == ops
    sa["metadata"]["resourceVersion"] = "7"
    assert guard_resource_version([], sa) == []
    assert guard_resource_version(ops, {"metadata": None}) == ops


@pytest.mark.parametrize(
    ("sa_annotations", "ns_labels", "expected"),
    [
        (ABSENT, None, False),
        (None, {}, False),
        ({}, {"other": "false"}, False),
        ({OPT_OUT_KEY: "true"}, {OPT_OUT_KEY: "true"}, False),
        ({OPT_OUT_KEY: ""}, None, False),
        ({OPT_OUT_KEY: "no"}, None, False),
        ({OPT_OUT_KEY: "false"}, None, True),
        ({OPT_OUT_KEY: "False"}, None, True),
        (ABSENT, {OPT_OUT_KEY: "false"}, True),
        ({OPT_OUT_KEY: "true"}, {OPT_OUT_KEY: "false"}, True),
        ({OPT_OUT_KEY: "false"}, {OPT_OUT_KEY: "true"}, True),
        ("junk", {OPT_OUT_KEY: "FALSE"}, True),
    ],
)
def test_is_opted_out(
    sa_annotations: object, ns_labels: dict[str, str] | None, expected: bool
) -> None:
    assert is_opted_out(make_sa(annotations=sa_annotations), ns_labels) is expected


def test_opt_out_by_sa_label_does_not_count() -> None:
    sa = make_sa()
    sa["metadata"]["labels"] = {OPT_OUT_KEY: "false"}
    assert not is_opted_out(sa, None)


def test_is_opted_out_without_metadata() -> None:
    assert not is_opted_out({}, None)
    assert not is_opted_out({"metadata": None}, None)


def test_serviceaccount_mutation() -> None:
    sa = make_sa([{"name": "user"}])
    result = apply(sa, serviceaccount_mutation(sa, {"kubernetes.io/metadata.name": "team-a"}))
    assert result["imagePullSecrets"] == [{"name": "user"}, {"name": "builder-dockercfg"}]
    assert result["metadata"]["annotations"][ANNOTATION_PULL_SECRET_REF] == "builder-dockercfg"


def test_serviceaccount_mutation_skips_opted_out_and_unnamed() -> None:
    assert serviceaccount_mutation(make_sa(annotations={OPT_OUT_KEY: "false"}), None) == []
    assert serviceaccount_mutation(make_sa(), {OPT_OUT_KEY: "false"}) == []
    unnamed = make_sa()
    del unnamed["metadata"]["name"]
    unnamed["metadata"]["generateName"] = "builder-"
    assert serviceaccount_mutation(unnamed, None) == []
    assert serviceaccount_mutation({}, None) == []
