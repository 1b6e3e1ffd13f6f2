"""The image-pruner reconciler against a fake API whose store the caches show."""

from __future__ import annotations

import copy
import datetime as dt
import logging

import pytest

from controller.imagepruner.reconciler import ImagePrunerReconciler
from kube import apierrors
from kube.requeue import Requeue
from quota.imagepruner.cronjob import PrunerSettings, desired_cronjob
from quota.objects import Obj
from tests.unit.apistatus import api_error

NAMESPACE = "image-registry-system"
SETTINGS = PrunerSettings(namespace=NAMESPACE, image="registry-v2/policy:0.1.0")
NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
REFUSAL = 'CronJob.batch "image-pruner" is invalid: spec.schedule: Invalid value: "x"'


class FakeApi:
    """The ImagePruner and the CronJob, with the API server's preconditions."""

    def __init__(self) -> None:
        self.pruner: Obj | None = None
        self.cronjob: Obj | None = None
        self.calls: list[str] = []
        self.refuse_cronjob: Exception | None = None
        self.served = True
        self.pruners_created = 0
        self._version = 0

    def _stamp(self, body: Obj, uid: str) -> Obj:
        self._version += 1
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(self._version)
        stored["metadata"].setdefault("uid", uid)
        return stored

    def create_pruner(self, body: Obj) -> Obj:
        self.calls.append("create_pruner")
        if not self.served:
            raise api_error(apierrors.NOT_FOUND, "the server could not find the requested resource")
        if self.pruner is not None:
            raise api_error(apierrors.ALREADY_EXISTS)
        self.pruners_created += 1  # a new object, a new uid: pruner-uid, pruner-uid-2, ...
        suffix = "" if self.pruners_created == 1 else f"-{self.pruners_created}"
        self.pruner = self._stamp(body, f"pruner-uid{suffix}")
        self.pruner["metadata"]["generation"] = 1
        return self.pruner

    def replace_pruner_status(self, name: str, body: Obj) -> Obj:
        self.calls.append("replace_pruner_status")
        assert self.pruner is not None
        if body["metadata"]["resourceVersion"] != self.pruner["metadata"]["resourceVersion"]:
            raise api_error(apierrors.CONFLICT)
        self.pruner = self._stamp({**self.pruner, "status": body["status"]}, "")
        return self.pruner

    def create_cronjob(self, namespace: str, body: Obj) -> Obj:
        self.calls.append("create_cronjob")
        if self.refuse_cronjob is not None:
            raise self.refuse_cronjob
        if self.cronjob is not None:
            raise api_error(apierrors.ALREADY_EXISTS)
        self.cronjob = self._stamp(body, "cronjob-uid")
        return self.cronjob

    def replace_cronjob(self, namespace: str, name: str, body: Obj) -> Obj:
        self.calls.append("replace_cronjob")
        assert self.cronjob is not None
        if body["metadata"]["resourceVersion"] != self.cronjob["metadata"]["resourceVersion"]:
            raise api_error(apierrors.CONFLICT)
        body["metadata"]["uid"] = self.cronjob["metadata"]["uid"]
        self.cronjob = self._stamp(body, "")
        return self.cronjob


class Cache:
    def __init__(self, read: object) -> None:
        self._read = read

    def get(self, key: str) -> Obj | None:
        return self._read()  # type: ignore[operator, no-any-return]

    def list(self, namespace: str | None = None) -> list[Obj]:
        return []


def reconciler(api: FakeApi) -> ImagePrunerReconciler:
    return ImagePrunerReconciler(
        api=api,
        settings=SETTINGS,
        pruners=Cache(lambda: api.pruner),
        cronjobs=Cache(lambda: api.cronjob),
        jobs=Cache(lambda: None),
        now=lambda: NOW,
    )


def converge(api: FakeApi, passes: int = 4) -> None:
    r = reconciler(api)
    for _ in range(passes):
        r.reconcile(r.key)


def test_from_nothing_the_default_pruner_its_cronjob_and_its_status() -> None:
    api = FakeApi()
    converge(api)
    assert api.calls == ["create_pruner", "create_cronjob", "replace_pruner_status"]
    assert api.pruner is not None and api.cronjob is not None
    assert api.cronjob["metadata"]["ownerReferences"][0]["uid"] == "pruner-uid"
    assert api.pruner["status"]["observedGeneration"] == 1


def test_a_converged_pruner_makes_no_call() -> None:
    api = FakeApi()
    converge(api)
    api.calls.clear()
    converge(api)
    assert api.calls == []


def test_a_hand_edit_is_replaced_with_the_resource_version_read() -> None:
    api = FakeApi()
    converge(api)
    assert api.cronjob is not None
    api.cronjob["spec"]["schedule"] = "* * * * *"
    api.calls.clear()
    converge(api, passes=1)
    assert api.calls == ["replace_cronjob"]
    assert api.cronjob["spec"]["schedule"] == "0 0 * * *"


def test_a_cronjob_changed_since_the_cache_showed_it_is_judged_again() -> None:
    api = FakeApi()
    converge(api)
    assert api.cronjob is not None
    stale = copy.deepcopy(api.cronjob)
    stale["spec"]["suspend"] = True
    r = ImagePrunerReconciler(
        api=api,
        settings=SETTINGS,
        pruners=Cache(lambda: api.pruner),
        cronjobs=Cache(
            lambda: {**stale, "metadata": {**stale["metadata"], "resourceVersion": "0"}}
        ),
        jobs=Cache(lambda: None),
        now=lambda: NOW,
    )
    with pytest.raises(Requeue):
        r.reconcile(r.key)


def test_a_refused_cronjob_is_reported_in_the_status_not_retried() -> None:
    api = FakeApi()
    api.refuse_cronjob = api_error(apierrors.INVALID, REFUSAL)
    converge(api)
    assert api.pruner is not None
    available = api.pruner["status"]["conditions"][0]
    assert (available["type"], available["status"], available["reason"]) == (
        "Available",
        "False",
        "RenderFailed",
    )
    assert REFUSAL in available["message"]
    assert "observedGeneration" not in api.pruner["status"]


def test_a_pruner_created_meanwhile_is_judged_again() -> None:
    api = FakeApi()
    r = ImagePrunerReconciler(
        api=api,
        settings=SETTINGS,
        pruners=Cache(lambda: None),  # the cache has not seen it yet
        cronjobs=Cache(lambda: api.cronjob),
        jobs=Cache(lambda: None),
        now=lambda: NOW,
    )
    api.create_pruner({"metadata": {"name": "cluster"}, "spec": {}})
    with pytest.raises(Requeue):
        r.reconcile(r.key)


def test_without_the_crd_it_warns_once_and_waits_for_the_resync(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = FakeApi()
    api.served = False
    with caplog.at_level(logging.WARNING):
        converge(api, passes=3)
    assert api.calls == ["create_pruner"] * 3
    assert sum("no CRD" in r.getMessage() for r in caplog.records) == 1


def test_a_pruner_being_deleted_is_left_to_the_garbage_collector() -> None:
    api = FakeApi()
    converge(api)
    assert api.pruner is not None
    api.pruner["metadata"]["deletionTimestamp"] = "2026-12-07T12:00:00Z"
    api.pruner["spec"]["keepTagRevisions"] = 1
    api.calls.clear()
    converge(api)
    assert api.calls == []


def test_the_cronjob_is_the_rendering_of_the_spec() -> None:
    api = FakeApi()
    converge(api)
    assert api.pruner is not None and api.cronjob is not None
    api.pruner["spec"] = {"keepTagRevisions": 1}
    converge(api)
    expected = desired_cronjob(api.pruner, SETTINGS)
    assert api.cronjob["spec"] == expected["spec"]


def test_the_cronjob_of_a_deleted_pruner_is_never_taken_over() -> None:
    api = FakeApi()
    converge(api)
    assert api.pruner is not None
    api.pruner = None  # deleted; its CronJob waits for the garbage collector
    api.calls.clear()
    converge(api)
    assert api.calls == ["create_pruner"]
    assert api.cronjob is not None
    assert api.cronjob["metadata"]["ownerReferences"][0]["uid"] == "pruner-uid"
