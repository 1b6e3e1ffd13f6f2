"""The default RoleBindings' rules: what a namespace should hold, and what an existing
binding under each name calls for."""

from __future__ import annotations

import copy

import pytest

from quota.objects import Obj
from quota.rolebindings import (
    ANNOTATION_SPEC_HASH,
    BUILDERS,
    PULLERS,
    Action,
    desired_binding,
    is_ours,
    is_unchanged,
    opted_out,
    plan,
    spec_hash,
)


def test_pullers_bind_the_viewer_role_to_every_serviceaccount_of_the_namespace() -> None:
    binding = desired_binding("team-a", PULLERS)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "registry-viewer",
    }
    assert binding["subjects"] == [
        {
            "kind": "Group",
            "apiGroup": "rbac.authorization.k8s.io",
            "name": "system:serviceaccounts:team-a",
        }
    ]


def test_builders_bind_the_editor_role_to_the_builder_serviceaccount() -> None:
    binding = desired_binding("team-a", BUILDERS)
    assert binding["roleRef"]["name"] == "registry-editor"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "builder", "namespace": "team-a"}
    ]


def test_a_name_that_is_not_a_default_binding_is_refused() -> None:
    with pytest.raises(ValueError):
        desired_binding("team-a", "admin")


@pytest.mark.parametrize("name", [PULLERS, BUILDERS])
def test_what_we_write_is_ours_and_unchanged(name: str) -> None:
    binding = desired_binding("team-a", name)
    assert is_ours(binding) and is_unchanged(binding)


def as_stored(binding: Obj) -> Obj:
    """The binding as the API server returns it: defaults filled, server fields added."""
    stored = copy.deepcopy(binding)
    stored["metadata"].update(
        uid="u1", resourceVersion="7", creationTimestamp="2026-12-07T00:00:00Z"
    )
    for subject in stored["subjects"]:
        if subject["kind"] == "ServiceAccount":
            subject.setdefault("apiGroup", "")
    return stored


@pytest.mark.parametrize("name", [PULLERS, BUILDERS])
def test_the_api_servers_defaults_are_no_edit(name: str) -> None:
    stored = as_stored(desired_binding("team-a", name))
    assert is_unchanged(stored)
    assert plan("team-a", name, stored, opt_out=False).action is Action.NONE


def test_a_missing_binding_is_created() -> None:
    step = plan("team-a", PULLERS, None, opt_out=False)
    assert step.action is Action.CREATE
    assert step.desired == desired_binding("team-a", PULLERS)


def test_a_user_edit_of_the_subjects_is_left_alone() -> None:
    edited = as_stored(desired_binding("team-a", PULLERS))
    edited["subjects"] = [{"kind": "ServiceAccount", "name": "default", "namespace": "team-a"}]
    assert is_ours(edited) and not is_unchanged(edited)
    assert plan("team-a", PULLERS, edited, opt_out=False).action is Action.LEAVE_EDITED


def test_a_user_edit_is_left_alone_even_on_opt_out() -> None:
    edited = as_stored(desired_binding("team-a", BUILDERS))
    edited["subjects"].append({"kind": "User", "name": "alice"})
    assert plan("team-a", BUILDERS, edited, opt_out=True).action is Action.LEAVE_EDITED


@pytest.mark.parametrize("opt_out", [False, True])
def test_a_binding_without_our_label_is_the_users(opt_out: bool) -> None:
    foreign = as_stored(desired_binding("team-a", PULLERS))
    del foreign["metadata"]["labels"]
    assert plan("team-a", PULLERS, foreign, opt_out=opt_out).action is Action.LEAVE_FOREIGN


def test_opting_out_deletes_our_unchanged_binding_and_creates_nothing() -> None:
    ours = as_stored(desired_binding("team-a", PULLERS))
    assert plan("team-a", PULLERS, ours, opt_out=True).action is Action.DELETE
    assert plan("team-a", PULLERS, None, opt_out=True).action is Action.NONE


def older_version(name: str, **changes: object) -> Obj:
    """A binding an older version wrote: ours, its hash matching what it wrote."""
    binding = as_stored(desired_binding("team-a", name))
    binding.update(changes)
    binding["metadata"]["annotations"][ANNOTATION_SPEC_HASH] = spec_hash(
        binding["roleRef"], binding["subjects"]
    )
    return binding


def test_our_unchanged_binding_with_other_subjects_is_updated() -> None:
    old = older_version(PULLERS, subjects=[{"kind": "Group", "name": "system:serviceaccounts"}])
    assert is_unchanged(old)
    assert plan("team-a", PULLERS, old, opt_out=False).action is Action.UPDATE


def test_our_unchanged_binding_with_another_role_is_recreated_as_roleref_is_immutable() -> None:
    role = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}
    old = older_version(BUILDERS, roleRef=role)
    assert plan("team-a", BUILDERS, old, opt_out=False).action is Action.RECREATE


def test_a_hash_annotation_removed_reads_as_an_edit() -> None:
    ours = as_stored(desired_binding("team-a", PULLERS))
    del ours["metadata"]["annotations"]
    assert plan("team-a", PULLERS, ours, opt_out=False).action is Action.LEAVE_EDITED


@pytest.mark.parametrize(
    ("labels", "out"),
    [
        ({"image.alauda.io/default-rolebindings": "false"}, True),
        ({"image.alauda.io/default-rolebindings": "true"}, False),
        ({"image.alauda.io/managed-pull-secret": "false"}, False),
        ({}, False),
    ],
)
def test_only_the_label_set_to_false_opts_out(labels: dict[str, str], out: bool) -> None:
    assert opted_out(labels) is out


def test_malformed_fields_read_as_an_edit_not_a_crash() -> None:
    broken = as_stored(desired_binding("team-a", PULLERS))
    broken["subjects"] = "nonsense"
    broken["roleRef"] = None
    assert plan("team-a", PULLERS, broken, opt_out=False).action is Action.LEAVE_EDITED
