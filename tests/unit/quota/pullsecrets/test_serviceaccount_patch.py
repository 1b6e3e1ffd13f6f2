import copy
from typing import Any

import jsonpatch
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quota.pullsecrets.names import ANNOTATION_PULL_SECRET_REF, OPT_OUT_KEY
from quota.pullsecrets.serviceaccount_patch import (
    add_pull_secret_patch,
    guard_resource_version,
    is_opted_out,
    remove_pull_secret_patch,
    retire_pull_secret_patch,
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
    with pytest.raises(ValueError, match=r"^secret name must not be empty$"):
        add_pull_secret_patch(make_sa(), "")


def test_a_resource_version_that_is_not_a_string_adds_no_guard() -> None:
    ops = add_pull_secret_patch(make_sa(), OURS)
    sa = make_sa()
    sa["metadata"]["resourceVersion"] = 42
    assert guard_resource_version(ops, sa) == ops


@pytest.mark.parametrize("name", [5, ["x"], None])
def test_a_service_account_without_a_string_name_is_not_mutated(name: object) -> None:
    sa = make_sa()
    sa["metadata"]["name"] = name
    assert serviceaccount_mutation(sa, None) == []


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


GENERATED_SECRET = "sa-dockercfg"
MISSING = object()

entries: st.SearchStrategy[object] = st.one_of(
    st.just({"name": GENERATED_SECRET}),
    st.sampled_from(["a", "b", "regcred", "sa-dockercfg-old", "SA-DOCKERCFG"]).map(
        lambda n: {"name": n}
    ),
    st.text(max_size=5).map(lambda n: {"name": n}),
    st.sampled_from([None, 3, "junk", {}, {"other": GENERATED_SECRET}, []]),
)
pull_secrets = st.one_of(
    st.just(MISSING), st.none(), st.just("junk"), st.lists(entries, max_size=8)
)
annotation_maps = st.dictionaries(
    st.sampled_from([ANNOTATION_PULL_SECRET_REF, "a/b", "c~d", "x", "image.alauda.io/other"]),
    st.sampled_from([GENERATED_SECRET, "other", ""]),
    max_size=4,
)
annotations = st.one_of(st.just(MISSING), st.none(), annotation_maps)


@st.composite
def service_accounts(draw: st.DrawFn) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "sa", "namespace": "ns"}
    if (value := draw(annotations)) is not MISSING:
        metadata["annotations"] = value
    sa: dict[str, Any] = {"kind": "ServiceAccount", "metadata": metadata}
    broken_metadata = draw(st.sampled_from([None, MISSING, "keep", "keep", "keep"]))
    if broken_metadata is None:
        sa["metadata"] = None
    elif broken_metadata is MISSING:
        del sa["metadata"]
    if (value := draw(pull_secrets)) is not MISSING:
        sa["imagePullSecrets"] = value
    return sa


def is_ours(entry: object) -> bool:
    return isinstance(entry, dict) and entry.get("name") == GENERATED_SECRET


def others(sa: dict[str, Any]) -> list[Any]:
    value = sa.get("imagePullSecrets")
    return [e for e in value if not is_ours(e)] if isinstance(value, list) else []


def user_annotations(sa: dict[str, Any]) -> dict[str, Any]:
    metadata = sa.get("metadata")
    value = metadata.get("annotations") if isinstance(metadata, dict) else None
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if k != ANNOTATION_PULL_SECRET_REF}


@given(service_accounts())
def test_add_yields_exactly_one_entry_and_keeps_the_rest(sa: dict[str, Any]) -> None:
    original = copy.deepcopy(sa)
    ops = add_pull_secret_patch(sa, GENERATED_SECRET)
    assert sa == original
    result = jsonpatch.apply_patch(sa, ops)
    secrets = result["imagePullSecrets"]
    assert sum(is_ours(e) for e in secrets) == 1
    assert others(result) == others(sa)
    assert result["metadata"]["annotations"][ANNOTATION_PULL_SECRET_REF] == GENERATED_SECRET
    assert user_annotations(result) == user_annotations(sa)
    # The existing entry keeps its place; only later duplicates go; else appended.
    before = sa.get("imagePullSecrets")
    if isinstance(before, list) and any(is_ours(e) for e in before):
        first = next(i for i, e in enumerate(before) if is_ours(e))
        assert secrets == [e for i, e in enumerate(before) if not is_ours(e) or i == first]
    else:
        assert secrets[-1] == {"name": GENERATED_SECRET}
    # Nothing outside the two fields changes.
    assert {k: v for k, v in result.items() if k not in ("imagePullSecrets", "metadata")} == {
        k: v for k, v in sa.items() if k not in ("imagePullSecrets", "metadata")
    }


@given(service_accounts())
def test_add_is_idempotent(sa: dict[str, Any]) -> None:
    result = jsonpatch.apply_patch(sa, add_pull_secret_patch(sa, GENERATED_SECRET))
    assert add_pull_secret_patch(result, GENERATED_SECRET) == []


@given(service_accounts())
def test_remove_after_add_restores_user_entries(sa: dict[str, Any]) -> None:
    added = jsonpatch.apply_patch(sa, add_pull_secret_patch(sa, GENERATED_SECRET))
    removed = jsonpatch.apply_patch(added, remove_pull_secret_patch(added, GENERATED_SECRET))
    assert removed["imagePullSecrets"] == others(sa)
    assert removed["metadata"]["annotations"] == user_annotations(sa)
    assert remove_pull_secret_patch(removed, GENERATED_SECRET) == []


@given(service_accounts())
def test_remove_touches_only_what_is_ours(sa: dict[str, Any]) -> None:
    result = jsonpatch.apply_patch(sa, remove_pull_secret_patch(sa, GENERATED_SECRET))
    assert others(result) == others(sa)
    secrets = result.get("imagePullSecrets")
    assert not (isinstance(secrets, list) and any(is_ours(e) for e in secrets))
    assert user_annotations(result) == user_annotations(sa)
    assert remove_pull_secret_patch(result, GENERATED_SECRET) == []


@given(service_accounts(), st.text(min_size=1, max_size=5))
def test_a_guarded_patch_does_what_the_plain_one_does_and_only_on_that_version(
    sa: dict[str, Any], rv: str
) -> None:
    versioned = isinstance(sa.get("metadata"), dict)
    if versioned:
        sa["metadata"]["resourceVersion"] = rv
    for build in (add_pull_secret_patch, remove_pull_secret_patch):
        ops = build(sa, GENERATED_SECRET)
        guarded = guard_resource_version(ops, sa)
        assert jsonpatch.apply_patch(sa, guarded) == jsonpatch.apply_patch(sa, ops)
        if not ops or not versioned:
            assert guarded == ops
            continue
        assert guarded == [
            {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
            *ops,
        ]
        newer = copy.deepcopy(sa)
        newer["metadata"]["resourceVersion"] = rv + "1"
        with pytest.raises(jsonpatch.JsonPatchTestFailed):
            jsonpatch.apply_patch(newer, guarded)


def test_retiring_a_secret_removes_its_entries_and_keeps_the_rest() -> None:
    sa = make_sa(
        [{"name": "old"}, {"name": "user"}, {"name": "old"}], {ANNOTATION_PULL_SECRET_REF: OURS}
    )
    result = jsonpatch.apply_patch(sa, retire_pull_secret_patch(sa, "old"))
    assert result["imagePullSecrets"] == [{"name": "user"}]
    assert result["metadata"]["annotations"] == {ANNOTATION_PULL_SECRET_REF: OURS}
    assert retire_pull_secret_patch(result, "old") == []
    assert retire_pull_secret_patch(make_sa(), "old") == []
