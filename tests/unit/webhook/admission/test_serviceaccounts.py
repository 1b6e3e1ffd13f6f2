"""``/mutate/serviceaccounts``: the managed pull-secret patch, from the SA and its namespace."""

from __future__ import annotations

from collections.abc import Mapping

from quota.decision import Decision
from quota.pullsecrets.serviceaccount_patch import serviceaccount_mutation
from webhook.admission.review import AdmissionRequest, GroupVersionKind
from webhook.admission.serviceaccounts import ServiceAccountMutator

SA: dict[str, object] = {
    "apiVersion": "v1",
    "kind": "ServiceAccount",
    "metadata": {"name": "builder"},
}


def request(namespace: str = "team-a", obj: dict[str, object] | None = SA) -> AdmissionRequest:
    return AdmissionRequest(
        uid="u",
        kind=GroupVersionKind("", "v1", "ServiceAccount"),
        resource="serviceaccounts",
        sub_resource="",
        operation="CREATE",
        namespace=namespace,
        name="builder",
        object=obj,
        old_object=None,
        dry_run=False,
        username="alice",
    )


class Namespaces:
    def __init__(self, labels: dict[str, dict[str, str]]) -> None:
        self.labels = labels
        self.asked: list[str] = []

    def __call__(self, name: str) -> Mapping[str, str] | None:
        self.asked.append(name)
        return self.labels.get(name)


def test_a_service_account_gets_the_patch_for_its_namespace_labels() -> None:
    namespaces = Namespaces({"team-a": {"env": "dev"}})
    decision = ServiceAccountMutator(namespaces, frozenset({"kube-system"}))(request())
    assert decision == Decision.allow(patch=serviceaccount_mutation(SA, {"env": "dev"}))
    assert decision.patch, "a plain SA gets the pull secret"
    assert namespaces.asked == ["team-a"]


def test_an_opted_out_namespace_gets_no_patch() -> None:
    opted_out = Namespaces({"team-a": {"image.alauda.io/managed-pull-secret": "false"}})
    decision = ServiceAccountMutator(opted_out, frozenset())(request())
    assert decision == Decision.allow()


def test_excluded_namespaces_and_empty_requests_are_left_alone() -> None:
    namespaces = Namespaces({})
    mutator = ServiceAccountMutator(namespaces, frozenset({"kube-system"}))
    assert mutator(request(namespace="kube-system")) == Decision.allow()
    assert mutator(request(obj=None)) == Decision.allow()
    assert namespaces.asked == []
