"""Which Secret under the managed name a ServiceAccount may be pointed at."""

from __future__ import annotations

from typing import Any

import pytest

from quota.pullsecrets.desired_secret import may_reference

MARKERS: dict[str, Any] = {
    "labels": {"image.alauda.io/managed-by": "registry-v2-policy"},
    "annotations": {"image.alauda.io/service-account.name": "builder"},
}


def owner(name: str = "builder", uid: str = "uid-1", **changes: str) -> dict[str, str]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "name": name, "uid": uid, **changes}


def secret(*owners: dict[str, str], managed: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = dict(MARKERS) if managed else {}
    if owners:
        meta["ownerReferences"] = list(owners)
    return {"metadata": {"name": "builder-dockercfg", **meta}}


def sa(uid: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "builder", "namespace": "team-a"}
    if uid is not None:
        meta["uid"] = uid
    return {"metadata": meta}


def test_no_secret_yet_may_be_named_the_reconciler_creates_it() -> None:
    assert may_reference(None, sa(None)) is True
    assert may_reference(None, sa("uid-1")) is True


@pytest.mark.parametrize("uid", [None, "uid-1"])
def test_a_secret_without_the_managed_markers_is_someone_elses(uid: str | None) -> None:
    assert may_reference(secret(owner(), managed=False), sa(uid)) is False


def test_an_existing_account_may_name_only_its_own_secret() -> None:
    assert may_reference(secret(owner(uid="uid-1")), sa("uid-1")) is True
    assert may_reference(secret(owner(uid="uid-0")), sa("uid-1")) is False


def test_a_new_account_may_name_a_previous_incarnations_managed_secret() -> None:
    """At CREATE the SA has no uid yet; the reconciler replaces the old Secret."""
    assert may_reference(secret(owner(uid="uid-0")), sa(None)) is True
    assert may_reference(secret(owner(uid="uid-0")), sa("")) is True


@pytest.mark.parametrize(
    "owners",
    [
        (),
        (owner(name="other"),),
        (owner(kind="Deployment"),),
        (owner(apiVersion="apps/v1"),),
        ("not-a-mapping",),
    ],
    ids=["no-owner", "other-sa", "other-kind", "other-version", "malformed"],
)
def test_a_managed_looking_secret_not_owned_by_an_account_of_this_name_is_refused(
    owners: tuple[Any, ...],
) -> None:
    assert may_reference(secret(*owners), sa(None)) is False
    assert may_reference(secret(*owners), sa("uid-1")) is False


def test_owner_references_that_are_not_a_list_are_refused() -> None:
    planted = {"metadata": {**MARKERS, "ownerReferences": {"kind": "ServiceAccount"}}}
    assert may_reference(planted, sa(None)) is False
