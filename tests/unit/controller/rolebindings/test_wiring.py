"""Which changes queue a namespace for the default-rights reconciler."""

from __future__ import annotations

from kubernetes import client

from controller.rolebindings.wiring import RoleBindingWiring
from kube.informer import ADDED, DELETED, MODIFIED, Informer
from kube.ratelimit import RateLimiter
from quota.objects import Obj
from quota.rolebindings import BUILDERS, OPT_OUT_KEY, PULLERS


def wiring() -> RoleBindingWiring:
    accounts = Informer("serviceaccounts", lambda **_: None)  # never started here
    return RoleBindingWiring(
        client.ApiClient(),
        frozenset({"kube-system", "image-registry-system"}),
        RateLimiter(1, 1),
        accounts,
    )


def queued(w: RoleBindingWiring) -> set[str]:
    keys = set()
    while len(w.queue):
        key = w.queue.get(timeout=0)
        assert key is not None
        keys.add(str(key))
        w.queue.done(key)
    return keys


def ns(name: str, **labels: str) -> Obj:
    return {"metadata": {"name": name, "labels": labels}}


def binding(namespace: str, name: str) -> Obj:
    return {"metadata": {"name": name, "namespace": namespace}}


def test_a_new_namespace_and_an_opt_out_change_queue_it_other_label_changes_do_not() -> None:
    w = wiring()
    w._on_namespace(ADDED, ns("team-a"), None)
    assert queued(w) == {"team-a"}
    w._on_namespace(MODIFIED, ns("team-a", team="x"), ns("team-a"))
    assert queued(w) == set()
    w._on_namespace(MODIFIED, ns("team-a", **{OPT_OUT_KEY: "false"}), ns("team-a"))
    assert queued(w) == {"team-a"}
    w._on_namespace(DELETED, ns("team-a"), None)
    assert queued(w) == set()


def test_only_our_two_binding_names_queue_their_namespace() -> None:
    w = wiring()
    for name in (PULLERS, BUILDERS):
        w._on_rolebinding(MODIFIED, binding("team-a", name), None)
    w._on_rolebinding(ADDED, binding("team-c", "admin"), None)
    w._on_rolebinding(DELETED, binding("team-b", PULLERS), None)
    assert queued(w) == {"team-a", "team-b"}


def test_excluded_namespaces_are_never_queued() -> None:
    w = wiring()
    w._on_namespace(ADDED, ns("kube-system"), None)
    w._on_rolebinding(ADDED, binding("image-registry-system", PULLERS), None)
    assert queued(w) == set()


def account(namespace: str, name: str) -> Obj:
    return {"metadata": {"name": name, "namespace": namespace}}


def test_a_deleted_builder_account_queues_its_namespace_other_accounts_do_not() -> None:
    w = wiring()
    w._on_serviceaccount(DELETED, account("team-a", "builder"), None)
    w._on_serviceaccount(DELETED, account("team-b", "default"), None)
    w._on_serviceaccount(ADDED, account("team-c", "builder"), None)
    w._on_serviceaccount(DELETED, account("kube-system", "builder"), None)
    assert queued(w) == {"team-a"}


def test_the_shared_serviceaccount_cache_is_listened_to_not_owned() -> None:
    w = wiring()
    assert w.serviceaccounts not in w.informers  # its owner starts it, once
    w.serviceaccounts._dispatch(DELETED, account("team-a", "builder"), None)
    assert queued(w) == {"team-a"}
