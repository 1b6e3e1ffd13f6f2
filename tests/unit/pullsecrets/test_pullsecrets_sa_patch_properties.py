"""Property tests: the patch builders over generated ServiceAccounts."""

import copy
from typing import Any

import jsonpatch
from hypothesis import given
from hypothesis import strategies as st

from webhook.pullsecrets.names import ANNOTATION_PULL_SECRET_REF
from webhook.pullsecrets.serviceaccount_patch import (
    add_pull_secret_patch,
    guard_resource_version,
    remove_pull_secret_patch,
)

OURS = "sa-dockercfg"
MISSING = object()

entries: st.SearchStrategy[object] = st.one_of(
    st.just({"name": OURS}),
    st.sampled_from(["a", "b", "regcred", "sa-dockercfg-old", "SA-DOCKERCFG"]).map(
        lambda n: {"name": n}
    ),
    st.text(max_size=5).map(lambda n: {"name": n}),
    st.sampled_from([None, 3, "junk", {}, {"other": OURS}, []]),
)
pull_secrets = st.one_of(
    st.just(MISSING), st.none(), st.just("junk"), st.lists(entries, max_size=8)
)
annotation_maps = st.dictionaries(
    st.sampled_from([ANNOTATION_PULL_SECRET_REF, "a/b", "c~d", "x", "image.alauda.io/other"]),
    st.sampled_from([OURS, "other", ""]),
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
    return isinstance(entry, dict) and entry.get("name") == OURS


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
    ops = add_pull_secret_patch(sa, OURS)
    assert sa == original
    result = jsonpatch.apply_patch(sa, ops)
    secrets = result["imagePullSecrets"]
    assert sum(is_ours(e) for e in secrets) == 1
    assert others(result) == others(sa)
    assert result["metadata"]["annotations"][ANNOTATION_PULL_SECRET_REF] == OURS
    assert user_annotations(result) == user_annotations(sa)
    # The existing entry keeps its place; only later duplicates go; else appended.
    before = sa.get("imagePullSecrets")
    if isinstance(before, list) and any(is_ours(e) for e in before):
        first = next(i for i, e in enumerate(before) if is_ours(e))
        assert secrets == [e for i, e in enumerate(before) if not is_ours(e) or i == first]
    else:
        assert secrets[-1] == {"name": OURS}
    # Nothing outside the two fields changes.
    assert {k: v for k, v in result.items() if k not in ("imagePullSecrets", "metadata")} == {
        k: v for k, v in sa.items() if k not in ("imagePullSecrets", "metadata")
    }


@given(service_accounts())
def test_add_is_idempotent(sa: dict[str, Any]) -> None:
    result = jsonpatch.apply_patch(sa, add_pull_secret_patch(sa, OURS))
    assert add_pull_secret_patch(result, OURS) == []


@given(service_accounts())
def test_remove_after_add_restores_user_entries(sa: dict[str, Any]) -> None:
    added = jsonpatch.apply_patch(sa, add_pull_secret_patch(sa, OURS))
    removed = jsonpatch.apply_patch(added, remove_pull_secret_patch(added, OURS))
    assert removed["imagePullSecrets"] == others(sa)
    assert removed["metadata"]["annotations"] == user_annotations(sa)
    assert remove_pull_secret_patch(removed, OURS) == []


@given(service_accounts())
def test_remove_touches_only_what_is_ours(sa: dict[str, Any]) -> None:
    result = jsonpatch.apply_patch(sa, remove_pull_secret_patch(sa, OURS))
    assert others(result) == others(sa)
    secrets = result.get("imagePullSecrets")
    assert not (isinstance(secrets, list) and any(is_ours(e) for e in secrets))
    assert user_annotations(result) == user_annotations(sa)
    assert remove_pull_secret_patch(result, OURS) == []


@given(service_accounts(), st.text(min_size=1, max_size=5))
def test_guarded_patch_applies_to_the_object_it_was_built_from(sa: dict[str, Any], rv: str) -> None:
    if isinstance(sa.get("metadata"), dict):
        sa["metadata"]["resourceVersion"] = rv
    for build in (add_pull_secret_patch, remove_pull_secret_patch):
        jsonpatch.apply_patch(sa, guard_resource_version(build(sa, OURS), sa))
