"""The reconciler's decisions, with in-memory caches and a fake API (no cluster)."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
from collections.abc import Callable, Mapping
from typing import Any

import jsonpatch
import jwt
import pytest
from kubernetes.client.exceptions import ApiException

from controller.pullsecrets.reconciler import (
    PullSecretConfig,
    PullSecretReconciler,
)
from controller.pullsecrets.signingkey import SigningKey
from kube.apierrors import ALREADY_EXISTS, CONFLICT, FORBIDDEN, INVALID
from kube.requeue import Requeue
from quota.objects import Obj
from quota.pullsecrets.desired_secret import SigningKeyId, read_secret_config
from quota.pullsecrets.dockerconfig import internal_hostnames
from quota.pullsecrets.names import (
    ANNOTATION_PULL_SECRET_REF,
    LABEL_MANAGED_BY,
    secret_name_for,
)
from tests.unit.apistatus import api_error, namespace_terminating
from webhook.admission.review import AdmissionRequest, GroupVersionKind
from webhook.admission.serviceaccounts import ServiceAccountMutator

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class Store:
    def __init__(self) -> None:
        self.items: dict[str, Obj] = {}
        self.lagging: dict[str, Obj] = {}  # what a cache that lags the API still returns
        self.unseen: set[str] = set()  # in the API, not in the cache yet

    def get(self, key: str) -> Obj | None:
        if key in self.unseen:
            return None
        return copy.deepcopy(self.lagging.get(key, self.items.get(key)))

    def list(self, namespace: str | None = None) -> list[Obj]:
        return [
            copy.deepcopy(o)
            for o in self.items.values()
            if namespace is None or o["metadata"].get("namespace") == namespace
        ]

    def put(self, obj: Obj) -> None:
        meta = obj["metadata"]
        key = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
        self.items[key] = copy.deepcopy(obj)


class FakeApi:
    """Behaves like the API server for the calls the reconciler makes; writes go to the
    same stores the caches read, so tests can also simulate a lagging cache."""

    def __init__(self, secrets: Store, serviceaccounts: Store) -> None:
        self.secrets = secrets
        self.serviceaccounts = serviceaccounts
        self.calls: list[str] = []
        self.audiences: list[tuple[str, ...]] = []
        self._rv = itertools.count(100)
        self._uid = itertools.count(1)
        self.live_secrets: dict[str, Obj] = {}
        self.fail_replace_with: str | None = None
        self.fail_create_with: ApiException | None = None
        self.key_id = ""
        self.admit: Callable[[Obj], Obj] | None = None
        self.suffixes = iter(["bcd2f", "ghj4k", "lmn5p", "qrs6t"])
        self._seconds = itertools.count()

    def read_secret(self, namespace: str, name: str) -> Obj | None:
        self.calls.append("read_secret")
        return copy.deepcopy(self.live_secrets.get(f"{namespace}/{name}"))

    def list_managed_secrets(self, namespace: str) -> list[Obj]:
        self.calls.append("list_managed_secrets")
        return [
            copy.deepcopy(o)
            for o in self.live_secrets.values()
            if o["metadata"]["namespace"] == namespace
            and (o["metadata"].get("labels") or {}).get(LABEL_MANAGED_BY)
        ]

    def create_secret(self, namespace: str, body: Obj) -> Obj:
        self.calls.append("create_secret")
        if self.fail_create_with is not None:
            raise self.fail_create_with
        obj = copy.deepcopy(body)
        if "generateName" in obj["metadata"]:  # as the API server: a free name, at random
            generated = obj["metadata"].pop("generateName") + next(self.suffixes)
            obj["metadata"]["name"] = generated
        key = f"{namespace}/{obj['metadata']['name']}"
        if key in self.live_secrets:
            raise api_error(ALREADY_EXISTS, name=obj["metadata"]["name"], kind="secrets")
        obj["metadata"].update(
            uid=f"uid-{next(self._uid)}",
            resourceVersion=str(next(self._rv)),
            creationTimestamp=f"2026-01-01T00:00:{next(self._seconds):02d}Z",
        )
        self.live_secrets[key] = obj
        self.secrets.put(obj)
        return copy.deepcopy(obj)

    def replace_secret(self, namespace: str, name: str, body: Obj) -> Obj:
        self.calls.append("replace_secret")
        if self.fail_replace_with:
            raise api_error(self.fail_replace_with)
        key = f"{namespace}/{name}"
        live = self.live_secrets[key]
        if body["metadata"]["resourceVersion"] != live["metadata"]["resourceVersion"]:
            raise api_error(CONFLICT, name=name, kind="secrets")
        obj = copy.deepcopy(body)
        obj["metadata"].update(uid=live["metadata"]["uid"], resourceVersion=str(next(self._rv)))
        self.live_secrets[key] = obj
        self.secrets.put(obj)
        return copy.deepcopy(obj)

    def delete_secret(self, namespace: str, name: str, uid: str) -> None:
        self.calls.append("delete_secret")
        key = f"{namespace}/{name}"
        if key in self.live_secrets and self.live_secrets[key]["metadata"]["uid"] == uid:
            del self.live_secrets[key]
            self.secrets.items.pop(key, None)

    def request_token(
        self,
        namespace: str,
        sa_name: str,
        secret: Obj,
        lifetime_seconds: int,
        audiences: tuple[str, ...],
    ) -> tuple[str, dt.datetime]:
        self.calls.append("request_token")
        self.audiences.append(audiences)
        token = f"token-{sa_name}-{secret['metadata']['uid']}"
        if self.key_id:  # signed as the API server signs: the key's id in the JWT header
            token = jwt.encode({"sub": token}, "k" * 32, headers={"kid": self.key_id})
        return token, NOW + dt.timedelta(seconds=lifetime_seconds)

    def read_serviceaccount(self, namespace: str, name: str) -> Obj | None:
        self.calls.append("read_serviceaccount")
        return copy.deepcopy(self.serviceaccounts.items.get(f"{namespace}/{name}"))

    def patch_serviceaccount(self, namespace: str, name: str, ops: list[Obj]) -> Obj:
        self.calls.append("patch_serviceaccount")
        key = f"{namespace}/{name}"
        current = self.serviceaccounts.items[key]
        try:
            patched = jsonpatch.apply_patch(current, ops)
        except jsonpatch.JsonPatchTestFailed:
            raise api_error(INVALID, name=name, kind="serviceaccounts") from None
        if self.admit is not None:  # the API server calls the mutating webhook on UPDATE
            patched = self.admit(patched)
        patched["metadata"]["resourceVersion"] = str(next(self._rv))
        self.serviceaccounts.put(patched)
        return copy.deepcopy(patched)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def record(
        self,
        involved: Obj,
        event_type: str,
        reason: str,
        message: str,
        *,
        namespace: str | None = None,
    ) -> None:
        self.events.append((involved["name"], reason))


class World:
    def __init__(self) -> None:
        self.serviceaccounts = Store()
        self.secrets = Store()
        self.namespaces = Store()
        self.configs = Store()
        self.api = FakeApi(self.secrets, self.serviceaccounts)
        self.recorder = Recorder()
        self.now = NOW
        self.key_changes = 0
        self.signing_key = SigningKey(on_change=self._count_key_change)
        self.reconciler = PullSecretReconciler(
            api=self.api,
            serviceaccounts=self.serviceaccounts,
            secrets=self.secrets,
            namespaces=self.namespaces,
            registry_configs=self.configs,
            recorder=self.recorder,
            config=PullSecretConfig(
                internal_hostnames=internal_hostnames("reg.sys.svc:5000"),
                extra_hostnames=("extra.example.com",),
                excluded_namespaces=frozenset({"kube-system"}),
                token_lifetime_seconds=3600,
            ),
            now=lambda: self.now,
            signing_key=self.signing_key,
        )
        self.namespaces.put({"metadata": {"name": "team", "labels": {}}})

    def _count_key_change(self) -> None:
        self.key_changes += 1

    def add_sa(self, name: str, ns: str = "team", **extra: Any) -> None:
        self.serviceaccounts.put(
            {
                "metadata": {
                    "name": name,
                    "namespace": ns,
                    "uid": f"sa-uid-{name}",
                    "resourceVersion": "1",
                    **extra,
                }
            }
        )

    def converge(self, key: str, rounds: int = 5) -> float | None:
        for _ in range(rounds):
            try:
                return self.reconciler.reconcile(key)
            except Requeue:
                continue
        raise AssertionError("did not converge")


def test_creates_a_bound_secret_patches_the_sa_and_requeues_at_60_percent() -> None:
    world = World()
    world.add_sa("builder")
    delay = world.converge("team/builder")
    assert world.api.calls == [
        "create_secret",
        "request_token",
        "replace_secret",
        "patch_serviceaccount",
    ]
    secret = world.secrets.get("team/builder-dockercfg")
    assert secret is not None
    config = read_secret_config(secret)
    assert config is not None
    assert set(config.hostnames) == {
        "reg.sys.svc:5000",
        "reg.sys.svc.cluster.local:5000",
        "extra.example.com",
    }
    assert config.token == "token-builder-uid-1"  # bound to the placeholder's uid
    sa = world.serviceaccounts.get("team/builder")
    assert sa is not None and sa["imagePullSecrets"] == [{"name": "builder-dockercfg"}]
    assert delay == pytest.approx(0.6 * 3600)


def test_a_second_run_writes_nothing() -> None:
    world = World()
    world.add_sa("builder")
    world.converge("team/builder")
    world.api.calls.clear()
    world.converge("team/builder")
    assert world.api.calls == []


def test_refreshes_the_token_at_60_percent_of_its_lifetime() -> None:
    world = World()
    world.add_sa("builder")
    world.converge("team/builder")
    world.now = NOW + dt.timedelta(seconds=2159)
    world.api.calls.clear()
    world.converge("team/builder")
    assert world.api.calls == []
    world.now = NOW + dt.timedelta(seconds=2160)
    world.converge("team/builder")
    assert world.api.calls == ["request_token", "replace_secret"]


def test_a_route_hostname_change_rewrites_the_secret() -> None:
    world = World()
    world.add_sa("builder")
    world.converge("team/builder")
    world.configs.items["cluster"] = {
        "metadata": {"name": "cluster"},
        "spec": {"routes": [{"name": "r", "hostname": "public.example.com"}]},
    }
    world.converge("team/builder")
    config = read_secret_config(world.secrets.get("team/builder-dockercfg") or {})
    assert config is not None and "public.example.com" in config.hostnames


def test_a_lagging_cache_never_creates_a_second_secret() -> None:
    world = World()
    world.add_sa("builder")
    world.converge("team/builder")
    world.secrets.items.clear()  # the cache has not seen our write yet
    world.api.calls.clear()
    world.converge("team/builder")
    assert world.api.calls == ["create_secret", "read_secret"]
    assert list(world.api.live_secrets) == ["team/builder-dockercfg"]


def test_a_write_conflict_is_a_requeue_not_an_error() -> None:
    world = World()
    world.add_sa("builder")
    world.api.fail_replace_with = CONFLICT
    with pytest.raises(Requeue):
        world.reconciler.reconcile("team/builder")
    world.api.fail_replace_with = None
    world.converge("team/builder")
    assert len(world.api.live_secrets) == 1


def test_a_stale_sa_patch_is_requeued_by_the_resource_version_test() -> None:
    world = World()
    world.add_sa("builder")
    stale = world.serviceaccounts.get("team/builder")
    world.serviceaccounts.items["team/builder"]["metadata"]["resourceVersion"] = "2"
    world.serviceaccounts.items["team/builder"]["imagePullSecrets"] = [{"name": "user"}]

    assert stale is not None
    world.serviceaccounts.lagging["team/builder"] = stale
    with pytest.raises(Requeue):
        world.reconciler.reconcile("team/builder")
    assert world.serviceaccounts.items["team/builder"]["imagePullSecrets"] == [{"name": "user"}]


@pytest.mark.parametrize("squatted", [False, True], ids=["plain-name", "fallback-name"])
def test_a_create_in_a_namespace_being_deleted_is_a_requeue_not_an_error(squatted: bool) -> None:
    """The namespace cache may not show the deletion yet; the API server's refusal says it."""
    world = squatted_world() if squatted else World()
    if not squatted:
        world.add_sa("builder")
    world.api.fail_create_with = namespace_terminating("team")
    with pytest.raises(Requeue, match="namespace team is terminating"):
        world.reconciler.reconcile("team/builder")


@pytest.mark.parametrize("squatted", [False, True], ids=["plain-name", "fallback-name"])
def test_a_create_denied_by_rbac_is_an_error(squatted: bool) -> None:
    """Forbidden without the NamespaceTerminating cause is a missing grant, not a race."""
    world = squatted_world() if squatted else World()
    if not squatted:
        world.add_sa("builder")
    world.api.fail_create_with = api_error(FORBIDDEN, "secrets is forbidden: User cannot create")
    with pytest.raises(ApiException):
        world.reconciler.reconcile("team/builder")


def test_a_recreated_sa_gets_a_new_secret() -> None:
    world = World()
    world.add_sa("builder")
    world.converge("team/builder")
    world.serviceaccounts.items["team/builder"]["metadata"]["uid"] = "sa-uid-new"
    world.converge("team/builder")
    secret = world.secrets.get("team/builder-dockercfg")
    assert secret is not None
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "sa-uid-new"
    assert "delete_secret" in world.api.calls


FOREIGN: Obj = {
    "metadata": {
        "name": "builder-dockercfg",
        "namespace": "team",
        "uid": "u",
        "resourceVersion": "1",
    },
    "type": "Opaque",
    "data": {"k": "dg=="},
}


def squatted_world() -> World:
    """``builder-dockercfg`` is someone else's Secret, there before the SA."""
    world = World()
    world.api.live_secrets["team/builder-dockercfg"] = copy.deepcopy(FOREIGN)
    world.add_sa("builder")
    return world


def test_a_squatted_name_gives_the_sa_a_working_secret_under_a_generated_name() -> None:
    world = squatted_world()
    delay = world.converge("team/builder")
    assert world.recorder.events == [("builder", "PullSecretNameTaken")]
    assert world.api.live_secrets["team/builder-dockercfg"] == FOREIGN  # never touched
    secret = world.api.live_secrets["team/builder-dockercfg-bcd2f"]
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "sa-uid-builder"
    config = read_secret_config(secret)
    assert config is not None and config.token == "token-builder-uid-1"
    sa = world.serviceaccounts.items["team/builder"]
    assert sa["imagePullSecrets"] == [{"name": "builder-dockercfg-bcd2f"}]
    assert sa["metadata"]["annotations"][ANNOTATION_PULL_SECRET_REF] == "builder-dockercfg-bcd2f"
    assert delay == pytest.approx(0.6 * 3600)


def test_a_replayed_event_adopts_the_fallback_and_never_creates_a_second() -> None:
    world = squatted_world()
    world.converge("team/builder")
    world.api.calls.clear()
    world.converge("team/builder")
    # The plain name is tried (it may be free again) and found taken; nothing else.
    assert world.api.calls == ["create_secret", "read_secret"]
    assert sorted(world.api.live_secrets) == [
        "team/builder-dockercfg",
        "team/builder-dockercfg-bcd2f",
    ]


def test_a_cache_that_lags_our_own_fallback_create_never_leads_to_a_second() -> None:
    """A restart, or the informer behind our write: only the API server's list can say the
    SA has no fallback yet."""
    world = squatted_world()
    world.converge("team/builder")
    world.secrets.items.clear()
    world.serviceaccounts.items["team/builder"]["metadata"]["annotations"] = {}
    world.converge("team/builder")
    assert "list_managed_secrets" in world.api.calls
    assert sorted(world.api.live_secrets) == [
        "team/builder-dockercfg",
        "team/builder-dockercfg-bcd2f",
    ]


def test_a_taken_generated_name_is_a_requeue_and_the_retry_generates_another() -> None:
    world = squatted_world()
    taken = copy.deepcopy(FOREIGN)
    taken["metadata"]["name"] = "builder-dockercfg-bcd2f"
    world.api.live_secrets["team/builder-dockercfg-bcd2f"] = taken
    with pytest.raises(Requeue):
        world.reconciler.reconcile("team/builder")
    world.converge("team/builder")
    assert world.api.live_secrets["team/builder-dockercfg-bcd2f"] == taken
    assert "team/builder-dockercfg-ghj4k" in world.api.live_secrets
    assert world.serviceaccounts.items["team/builder"]["imagePullSecrets"] == [
        {"name": "builder-dockercfg-ghj4k"}
    ]


def test_an_entry_the_service_added_for_a_name_taken_meanwhile_goes() -> None:
    """The webhook named the plain name while it was free; someone took it before the
    reconciler: the SA must stop naming it. A user's own entry for it stays."""
    world = squatted_world()
    sa = world.serviceaccounts.items["team/builder"]
    sa["imagePullSecrets"] = [{"name": "user"}, {"name": "builder-dockercfg"}]
    sa["metadata"]["annotations"] = {ANNOTATION_PULL_SECRET_REF: "builder-dockercfg"}
    world.converge("team/builder")
    assert world.serviceaccounts.items["team/builder"]["imagePullSecrets"] == [
        {"name": "user"},
        {"name": "builder-dockercfg-bcd2f"},
    ]

    listed_by_user = squatted_world()
    listed_by_user.serviceaccounts.items["team/builder"]["imagePullSecrets"] = [
        {"name": "builder-dockercfg"}
    ]
    listed_by_user.converge("team/builder")
    assert listed_by_user.serviceaccounts.items["team/builder"]["imagePullSecrets"] == [
        {"name": "builder-dockercfg"},
        {"name": "builder-dockercfg-bcd2f"},
    ]


def test_once_the_plain_name_is_free_again_it_is_used_and_the_fallback_retired() -> None:
    world = squatted_world()
    world.converge("team/builder")
    assert "team/builder-dockercfg-bcd2f" in world.api.live_secrets
    del world.api.live_secrets["team/builder-dockercfg"]
    for _ in range(3):
        world.converge("team/builder")
    assert sorted(world.api.live_secrets) == ["team/builder-dockercfg"]
    assert world.serviceaccounts.items["team/builder"]["imagePullSecrets"] == [
        {"name": "builder-dockercfg"}
    ]


def test_opting_out_removes_the_fallback_too() -> None:
    world = squatted_world()
    world.converge("team/builder")
    assert "team/builder-dockercfg-bcd2f" in world.api.live_secrets
    world.namespaces.items["team"]["metadata"]["labels"] = {
        "image.alauda.io/managed-pull-secret": "false"
    }
    world.converge("team/builder")
    assert world.api.live_secrets == {"team/builder-dockercfg": FOREIGN}
    sa = world.serviceaccounts.items["team/builder"]
    assert not sa.get("imagePullSecrets")
    assert ANNOTATION_PULL_SECRET_REF not in (sa["metadata"].get("annotations") or {})


def test_opting_out_removes_what_the_service_added() -> None:
    world = World()
    world.add_sa("builder")
    world.serviceaccounts.items["team/builder"]["imagePullSecrets"] = [{"name": "user"}]
    world.converge("team/builder")
    world.namespaces.items["team"]["metadata"]["labels"] = {
        "image.alauda.io/managed-pull-secret": "false"
    }
    world.converge("team/builder")
    sa = world.serviceaccounts.get("team/builder")
    assert sa is not None and sa["imagePullSecrets"] == [{"name": "user"}]
    assert "image.alauda.io/internal-registry-pull-secret-ref" not in (
        sa["metadata"].get("annotations") or {}
    )
    assert world.api.live_secrets == {}


def test_orphaned_secrets_are_deleted_and_excluded_namespaces_untouched() -> None:
    world = World()
    world.add_sa("builder")
    world.converge("team/builder")
    del world.serviceaccounts.items["team/builder"]
    world.converge("team/builder")
    assert world.api.live_secrets == {}
    world.add_sa("default", ns="kube-system")
    world.api.calls.clear()
    assert world.converge("kube-system/default") is None
    assert world.api.calls == []


def test_terminating_namespaces_and_sas_are_skipped() -> None:
    world = World()
    world.add_sa("builder", deletionTimestamp="2026-01-01T00:00:00Z")
    assert world.converge("team/builder") is None
    world.add_sa("other")
    world.namespaces.items["team"]["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert world.converge("team/other") is None
    assert world.api.calls == []


def test_tokens_are_requested_for_the_configured_audiences() -> None:
    world = World()
    world.add_sa("builder")
    world.converge("team/builder")
    assert world.api.audiences == [("image-registry.alauda.io",)]
    secret = world.secrets.get("team/builder-dockercfg")
    assert secret is not None
    assert secret["metadata"]["annotations"]["image.alauda.io/token-audiences"] == (
        "image-registry.alauda.io"
    )


def test_a_secret_from_before_the_audience_setting_is_refreshed_at_once() -> None:
    """An upgrade finds Secrets whose token is an API-server credential: replace them now,
    not at 60 % of their lifetime."""
    world = World()
    world.add_sa("builder")
    world.converge("team/builder")
    for store in (world.secrets.items, world.api.live_secrets):
        del store["team/builder-dockercfg"]["metadata"]["annotations"][
            "image.alauda.io/token-audiences"
        ]
    world.api.calls.clear()
    world.converge("team/builder")
    assert world.api.calls == ["request_token", "replace_secret"]
    secret = world.secrets.get("team/builder-dockercfg")
    assert secret is not None
    assert "image.alauda.io/token-audiences" in secret["metadata"]["annotations"]


def test_a_secret_named_the_old_long_way_is_retired_after_the_sa_names_the_new_one() -> None:
    """Long names hashed before the suffix until the scheme changed; after an upgrade the
    SA gets its new Secret, stops naming the old one, and the old one is deleted."""
    world = World()
    long = "a" * 250
    world.add_sa(long)
    key = f"team/{long}"
    world.converge(key)
    new_name = secret_name_for(long)
    current = world.secrets.get(f"team/{new_name}")
    assert current is not None
    old_name = "a" * 232 + "-0123456789-dockercfg"
    old = copy.deepcopy(current)
    old["metadata"].update(name=old_name, uid="old-uid")
    for store in (world.secrets.items, world.api.live_secrets):
        store[f"team/{old_name}"] = copy.deepcopy(old)
    sa = world.serviceaccounts.items[key]
    sa["imagePullSecrets"] = [{"name": old_name}, {"name": "user"}, {"name": new_name}]

    world.converge(key)
    world.converge(key)

    assert f"team/{old_name}" not in world.api.live_secrets
    assert f"team/{new_name}" in world.api.live_secrets
    assert world.serviceaccounts.items[key]["imagePullSecrets"] == [
        {"name": "user"},
        {"name": new_name},
    ]
    calls = world.api.calls
    assert calls.index("patch_serviceaccount") < calls.index("delete_secret")


def test_another_sas_secret_is_never_retired() -> None:
    world = World()
    world.add_sa("builder")
    world.add_sa("other")
    world.converge("team/builder")
    world.converge("team/other")
    world.api.calls.clear()
    world.converge("team/builder")
    assert "delete_secret" not in world.api.calls
    assert {"team/builder-dockercfg", "team/other-dockercfg"} <= set(world.api.live_secrets)


def test_a_secret_is_not_deleted_while_its_sa_exists_but_is_not_cached_yet() -> None:
    """At start-up or failover the SA cache can lag the Secret cache: the SA missing from
    the cache is not proof that it is gone."""
    world = World()
    world.add_sa("builder")
    world.converge("team/builder")
    world.serviceaccounts.unseen.add("team/builder")
    world.api.calls.clear()
    with pytest.raises(Requeue):
        world.reconciler.reconcile("team/builder")
    assert world.api.calls == ["read_serviceaccount"]
    assert "team/builder-dockercfg" in world.api.live_secrets


def test_a_secret_whose_sa_is_really_gone_is_deleted() -> None:
    world = World()
    world.add_sa("builder")
    world.converge("team/builder")
    del world.serviceaccounts.items["team/builder"]
    world.api.calls.clear()
    world.converge("team/builder")
    assert world.api.calls == ["read_serviceaccount", "delete_secret"]
    assert "team/builder-dockercfg" not in world.api.live_secrets


def test_tokens_signed_before_a_key_rotation_are_refreshed_at_once() -> None:
    """The old key still verifies them, so their clock alone would keep them for 36
    minutes more; the key id says they predate the rotation."""
    world = World()
    world.api.key_id = "key-1"
    world.add_sa("builder")
    world.add_sa("other")
    world.converge("team/builder")
    world.converge("team/other")
    secret = world.secrets.get("team/builder-dockercfg")
    assert secret is not None
    assert secret["metadata"]["annotations"]["image.alauda.io/token-key-id"] == "key-1"

    world.api.key_id = "key-2"
    world.now = NOW + dt.timedelta(seconds=60)
    world.signing_key.observe("key-2", world.now)  # what the next probe learns
    world.api.calls.clear()
    world.converge("team/builder")
    assert world.api.calls == ["request_token", "replace_secret"]
    secret = world.secrets.get("team/builder-dockercfg")
    assert secret is not None
    assert secret["metadata"]["annotations"]["image.alauda.io/token-key-id"] == "key-2"
    world.api.calls.clear()
    world.converge("team/builder")
    assert world.api.calls == []  # current now


def test_a_token_minted_by_a_server_still_on_the_old_key_is_not_refreshed_again() -> None:
    """Several API servers roll a new key one at a time: the refresh may be signed by one
    still on the old key. That token is not judged stale (it came after the change), so
    no refresh makes another, and only the probe moves the current key."""
    world = World()
    world.api.key_id = "key-1"
    world.add_sa("builder")
    world.converge("team/builder")
    world.now = NOW + dt.timedelta(seconds=60)
    world.signing_key.observe("key-2", world.now)
    world.now += dt.timedelta(seconds=1)
    world.converge("team/builder")  # refreshed, but by a server still signing with key-1
    world.api.calls.clear()
    world.converge("team/builder")
    assert world.api.calls == []
    assert world.signing_key.current() == SigningKeyId("key-2", NOW + dt.timedelta(seconds=60))
    assert world.key_changes == 1


class WebhookCache:
    """What the webhook's Secret cache holds: metadata of pull-type Secrets only."""

    def __init__(self, api: FakeApi) -> None:
        self.api = api

    def namespace_labels(self, name: str) -> Mapping[str, str] | None:
        return {}

    def pull_secret(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        secret = self.api.live_secrets.get(f"{namespace}/{name}")
        if secret is None or secret.get("type") != "kubernetes.io/dockerconfigjson":
            return None
        meta: Mapping[str, Any] = copy.deepcopy(secret["metadata"])
        return meta


def with_the_webhook(world: World) -> None:
    mutator = ServiceAccountMutator(WebhookCache(world.api), frozenset())

    def admit(sa: Obj) -> Obj:
        request = AdmissionRequest(
            uid="u",
            kind=GroupVersionKind("", "v1", "ServiceAccount"),
            resource="serviceaccounts",
            sub_resource="",
            operation="UPDATE",
            namespace=sa["metadata"]["namespace"],
            name=sa["metadata"]["name"],
            object=sa,
            old_object=None,
            dry_run=False,
            username="controller",
        )
        patch = list(mutator(request).patch)
        return jsonpatch.apply_patch(sa, patch) if patch else sa

    world.api.admit = admit


def test_the_move_off_a_squatted_name_survives_the_mutating_webhook() -> None:
    """The webhook named the plain name at CREATE (it cannot see an Opaque squatter); the
    reconciler's move to the fallback passes through the webhook on UPDATE, which must
    not put the plain name back, or the two undo each other for ever."""
    world = squatted_world()
    with_the_webhook(world)
    sa = world.serviceaccounts.items["team/builder"]
    sa["imagePullSecrets"] = [{"name": "builder-dockercfg"}]
    sa["metadata"]["annotations"] = {ANNOTATION_PULL_SECRET_REF: "builder-dockercfg"}
    world.converge("team/builder", rounds=3)
    world.api.calls.clear()
    world.converge("team/builder", rounds=1)
    assert "patch_serviceaccount" not in world.api.calls
    assert world.serviceaccounts.items["team/builder"]["imagePullSecrets"] == [
        {"name": "builder-dockercfg-bcd2f"}
    ]
