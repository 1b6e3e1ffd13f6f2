"""The default-rights reconciler against fake caches and a fake API: the two bindings and
the ``builder`` account."""

from __future__ import annotations

import copy

import pytest

from controller.rolebindings.reconciler import RoleBindingReconciler
from kube import apierrors
from kube.requeue import Requeue
from quota.objects import Obj
from quota.pullsecrets.names import LABEL_MANAGED_BY, LABEL_MANAGED_BY_VALUE
from quota.rolebindings import (
    ANNOTATION_SPEC_HASH,
    BUILDERS,
    OPT_OUT_KEY,
    PULLERS,
    desired_binding,
    spec_hash,
)
from tests.unit.apistatus import api_error, namespace_terminating


class FakeApi:
    """A tiny RoleBinding store that checks preconditions as the API server does."""

    def __init__(self) -> None:
        self.store: dict[str, Obj] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail_with: Exception | None = None
        self._version = 0

    def _stamp(self, body: Obj) -> Obj:
        self._version += 1
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(self._version)
        stored["metadata"].setdefault("uid", f"uid-{self._version}")
        return stored

    def create(self, namespace: str, body: Obj) -> Obj:
        key = f"{namespace}/{body['metadata']['name']}"
        self.calls.append(("create", key))
        if self.fail_with is not None:
            raise self.fail_with
        if key in self.store:
            raise api_error(apierrors.ALREADY_EXISTS)
        self.store[key] = self._stamp(body)
        return self.store[key]

    def replace(self, namespace: str, name: str, body: Obj) -> Obj:
        key = f"{namespace}/{name}"
        self.calls.append(("replace", key))
        current = self.store.get(key)
        if current is None:
            raise api_error(apierrors.NOT_FOUND)
        if current["metadata"]["resourceVersion"] != body["metadata"]["resourceVersion"]:
            raise api_error(apierrors.CONFLICT)
        body = copy.deepcopy(body)
        body["metadata"]["uid"] = current["metadata"]["uid"]
        self.store[key] = self._stamp(body)
        return self.store[key]

    def delete(self, namespace: str, name: str, uid: str, resource_version: str) -> None:
        key = f"{namespace}/{name}"
        self.calls.append(("delete", key))
        current = self.store.get(key)
        if current is None:
            return
        meta = current["metadata"]
        if (meta["uid"], meta["resourceVersion"]) != (uid, resource_version):
            raise api_error(apierrors.CONFLICT)
        del self.store[key]


class FakeAccounts:
    """ServiceAccounts: created, and never anything else (no update, no delete exists)."""

    def __init__(self) -> None:
        self.store: dict[str, Obj] = {}
        self.created: list[str] = []
        self.fail_with: Exception | None = None

    def create(self, namespace: str, body: Obj) -> Obj:
        key = f"{namespace}/{body['metadata']['name']}"
        self.created.append(key)
        if self.fail_with is not None:
            raise self.fail_with
        if key in self.store:
            raise api_error(apierrors.ALREADY_EXISTS)
        self.store[key] = copy.deepcopy(body)
        return self.store[key]


class Cache:
    def __init__(self, objects: dict[str, Obj]) -> None:
        self.objects = objects

    def get(self, key: str) -> Obj | None:
        return self.objects.get(key)


def namespace(name: str, **labels: str) -> Obj:
    return {"metadata": {"name": name, "labels": labels}}


def make(
    namespaces: list[Obj], api: FakeApi | None = None, accounts: FakeAccounts | None = None
) -> tuple[RoleBindingReconciler, FakeApi]:
    api = api or FakeApi()
    accounts = accounts or FakeAccounts()
    reconciler = RoleBindingReconciler(
        api=api,
        namespaces=Cache({ns["metadata"]["name"]: ns for ns in namespaces}),
        rolebindings=Cache(api.store),  # a cache that is never behind
        accounts=accounts,
        serviceaccounts=Cache(accounts.store),
        excluded_namespaces=frozenset({"image-registry-system", "kube-system"}),
    )
    return reconciler, api


def test_a_namespace_gets_both_bindings_and_a_second_pass_writes_nothing() -> None:
    reconciler, api = make([namespace("team-a")])
    assert reconciler.reconcile("team-a") is None
    assert api.store["team-a/registry-image-pullers"]["roleRef"]["name"] == "registry-viewer"
    assert api.store["team-a/registry-image-builders"]["roleRef"]["name"] == "registry-editor"
    writes = len(api.calls)
    reconciler.reconcile("team-a")
    assert len(api.calls) == writes


@pytest.mark.parametrize("excluded", ["kube-system", "image-registry-system"])
def test_excluded_namespaces_are_never_touched(excluded: str) -> None:
    reconciler, api = make([namespace(excluded)])
    reconciler.reconcile(excluded)
    assert api.calls == []
    assert not reconciler.managed(excluded)


def test_a_namespace_not_cached_or_going_away_is_skipped() -> None:
    going = namespace("going")
    going["metadata"]["deletionTimestamp"] = "2026-12-07T00:00:00Z"
    reconciler, api = make([going])
    reconciler.reconcile("going")
    reconciler.reconcile("unknown")
    assert api.calls == []


def test_a_user_edited_binding_is_left_alone() -> None:
    reconciler, api = make([namespace("team-a")])
    reconciler.reconcile("team-a")
    edited = api.store["team-a/registry-image-pullers"]
    edited["subjects"] = [{"kind": "ServiceAccount", "name": "default", "namespace": "team-a"}]
    calls = len(api.calls)
    reconciler.reconcile("team-a")
    assert api.calls[calls:] == []
    assert api.store["team-a/registry-image-pullers"]["subjects"][0]["name"] == "default"


def test_opting_out_deletes_ours_and_keeps_the_users() -> None:
    reconciler, api = make([namespace("team-a", **{OPT_OUT_KEY: "false"})])
    api.store["team-a/registry-image-pullers"] = {
        **desired_binding("team-a", PULLERS),
        "metadata": {
            **desired_binding("team-a", PULLERS)["metadata"],
            "uid": "a",
            "resourceVersion": "1",
        },
    }
    users = copy.deepcopy(desired_binding("team-a", BUILDERS))
    users["metadata"].update(uid="b", resourceVersion="2", labels={})
    api.store["team-a/registry-image-builders"] = users
    reconciler.reconcile("team-a")
    assert "team-a/registry-image-pullers" not in api.store
    assert api.store["team-a/registry-image-builders"] is users
    assert [c for c, _ in api.calls] == ["delete"]


def test_an_older_versions_subjects_are_updated_in_place() -> None:
    reconciler, api = make([namespace("team-a")])
    reconciler.reconcile("team-a")
    old = api.store["team-a/registry-image-pullers"]
    old["subjects"] = [{"kind": "Group", "name": "system:serviceaccounts"}]
    old["metadata"]["annotations"][ANNOTATION_SPEC_HASH] = spec_hash(
        old["roleRef"], old["subjects"]
    )
    uid = old["metadata"]["uid"]
    reconciler.reconcile("team-a")
    new = api.store["team-a/registry-image-pullers"]
    assert new["subjects"] == desired_binding("team-a", PULLERS)["subjects"]
    assert new["metadata"]["uid"] == uid


def test_an_older_versions_role_is_deleted_then_created_as_roleref_is_immutable() -> None:
    reconciler, api = make([namespace("team-a")])
    reconciler.reconcile("team-a")
    old = api.store["team-a/registry-image-builders"]
    old["roleRef"] = {**old["roleRef"], "name": "edit"}
    old["metadata"]["annotations"][ANNOTATION_SPEC_HASH] = spec_hash(
        old["roleRef"], old["subjects"]
    )
    with pytest.raises(Requeue):
        reconciler.reconcile("team-a")
    assert "team-a/registry-image-builders" not in api.store
    reconciler.reconcile("team-a")  # the queue's retry
    assert api.store["team-a/registry-image-builders"]["roleRef"]["name"] == "registry-editor"


def test_a_create_that_lost_a_race_is_retried_not_an_error() -> None:
    api = FakeApi()
    reconciler = RoleBindingReconciler(
        api=api,
        namespaces=Cache({"team-a": namespace("team-a")}),
        rolebindings=Cache({}),  # a cache behind the API server
        accounts=FakeAccounts(),
        serviceaccounts=Cache({}),
        excluded_namespaces=frozenset(),
    )
    api.store["team-a/registry-image-pullers"] = {"metadata": {"name": PULLERS}}
    with pytest.raises(Requeue):
        reconciler.reconcile("team-a")


def test_an_edit_racing_an_update_is_never_overwritten() -> None:
    reconciler, api = make([namespace("team-a")])
    reconciler.reconcile("team-a")
    seen = copy.deepcopy(api.store["team-a/registry-image-pullers"])
    seen["subjects"] = []
    seen["metadata"]["annotations"][ANNOTATION_SPEC_HASH] = spec_hash(seen["roleRef"], [])
    api.store["team-a/registry-image-pullers"]["metadata"]["resourceVersion"] = "99"
    stale = Cache({"team-a/registry-image-pullers": seen})
    racing = RoleBindingReconciler(
        api=api,
        namespaces=Cache({"team-a": namespace("team-a")}),
        rolebindings=stale,
        accounts=FakeAccounts(),
        serviceaccounts=Cache({}),
        excluded_namespaces=frozenset(),
    )
    with pytest.raises(Requeue):
        racing.reconcile("team-a")
    assert api.store["team-a/registry-image-pullers"]["subjects"] != []


def test_a_terminating_namespace_is_no_error() -> None:
    reconciler, api = make([namespace("team-a")])
    api.fail_with = namespace_terminating("team-a", "rolebindings")
    assert reconciler.reconcile("team-a") is None


def test_other_errors_propagate_for_the_runners_backoff() -> None:
    reconciler, api = make([namespace("team-a")])
    api.fail_with = api_error(apierrors.FORBIDDEN, "no bind")
    with pytest.raises(Exception) as raised:
        reconciler.reconcile("team-a")
    assert apierrors.is_forbidden(raised.value)


# --- the builder account -----------------------------------------------------------------


def test_a_namespace_gets_a_builder_account_marked_ours_and_a_second_pass_makes_none() -> None:
    accounts = FakeAccounts()
    reconciler, _ = make([namespace("team-a")], accounts=accounts)
    reconciler.reconcile("team-a")
    builder = accounts.store["team-a/builder"]
    assert builder["metadata"]["labels"] == {LABEL_MANAGED_BY: LABEL_MANAGED_BY_VALUE}
    reconciler.reconcile("team-a")
    assert accounts.created == ["team-a/builder"]


def test_a_users_builder_account_is_left_alone() -> None:
    accounts = FakeAccounts()
    mine = {"metadata": {"name": "builder", "namespace": "team-a", "labels": {"team": "a"}}}
    accounts.store["team-a/builder"] = mine
    reconciler, _ = make([namespace("team-a")], accounts=accounts)
    reconciler.reconcile("team-a")
    assert accounts.created == []
    assert accounts.store["team-a/builder"] is mine


def test_a_deleted_builder_account_is_created_again() -> None:
    accounts = FakeAccounts()
    reconciler, _ = make([namespace("team-a")], accounts=accounts)
    reconciler.reconcile("team-a")
    del accounts.store["team-a/builder"]
    reconciler.reconcile("team-a")
    assert accounts.created == ["team-a/builder", "team-a/builder"]
    assert "team-a/builder" in accounts.store


def test_an_opted_out_namespace_gets_no_account_and_keeps_the_one_we_made() -> None:
    accounts = FakeAccounts()
    reconciler, _ = make([namespace("fresh", **{OPT_OUT_KEY: "false"})], accounts=accounts)
    reconciler.reconcile("fresh")
    assert accounts.created == []
    made, _ = make([namespace("team-a")], accounts=accounts)
    made.reconcile("team-a")
    opted, _ = make([namespace("team-a", **{OPT_OUT_KEY: "false"})], accounts=accounts)
    opted.reconcile("team-a")
    assert "team-a/builder" in accounts.store  # no delete call exists to make


@pytest.mark.parametrize("excluded", ["kube-system", "image-registry-system"])
def test_excluded_and_going_namespaces_get_no_account(excluded: str) -> None:
    going = namespace("going")
    going["metadata"]["deletionTimestamp"] = "2026-12-07T00:00:00Z"
    accounts = FakeAccounts()
    reconciler, _ = make([namespace(excluded), going], accounts=accounts)
    for name in (excluded, "going", "unknown"):
        reconciler.reconcile(name)
    assert accounts.created == []


def test_an_account_made_meanwhile_is_no_error_and_stays_as_made() -> None:
    accounts = FakeAccounts()
    theirs = {"metadata": {"name": "builder", "namespace": "team-a"}}
    accounts.store["team-a/builder"] = theirs
    api = FakeApi()
    reconciler = RoleBindingReconciler(
        api=api,
        namespaces=Cache({"team-a": namespace("team-a")}),
        rolebindings=Cache(api.store),
        accounts=accounts,
        serviceaccounts=Cache({}),  # a cache behind the API server
        excluded_namespaces=frozenset(),
    )
    assert reconciler.reconcile("team-a") is None
    assert accounts.store["team-a/builder"] is theirs
    assert set(api.store) == {"team-a/registry-image-pullers", "team-a/registry-image-builders"}


def test_an_account_create_in_a_terminating_namespace_is_no_error() -> None:
    accounts = FakeAccounts()
    accounts.fail_with = namespace_terminating("team-a", "serviceaccounts")
    reconciler, _ = make([namespace("team-a")], accounts=accounts)
    assert reconciler.reconcile("team-a") is None


def test_an_account_create_refused_propagates_but_the_bindings_are_kept_first() -> None:
    accounts = FakeAccounts()
    accounts.fail_with = api_error(apierrors.FORBIDDEN, "no create")
    reconciler, api = make([namespace("team-a")], accounts=accounts)
    with pytest.raises(Exception) as raised:
        reconciler.reconcile("team-a")
    assert apierrors.is_forbidden(raised.value)
    assert set(api.store) == {"team-a/registry-image-pullers", "team-a/registry-image-builders"}
