"""``/mutate/serviceaccounts``: the managed pull-secret patch, from the SA, its namespace
and whatever Secret already holds the managed name."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest

from quota.decision import Decision
from quota.pullsecrets.serviceaccount_patch import serviceaccount_mutation
from webhook.admission.review import AdmissionRequest, GroupVersionKind
from webhook.admission.serviceaccounts import ServiceAccountMutator
from webhook.caches import NotSynced

SA: dict[str, object] = {
    "apiVersion": "v1",
    "kind": "ServiceAccount",
    "metadata": {"name": "builder"},
}
MANAGED_SECRET = {
    "metadata": {
        "name": "builder-dockercfg",
        "annotations": {"image.alauda.io/service-account.name": "builder"},
        "ownerReferences": [
            {"apiVersion": "v1", "kind": "ServiceAccount", "name": "builder", "uid": "old"}
        ],
    }
}
PLANTED_SECRET = {"metadata": {"name": "builder-dockercfg", "namespace": "team-a"}}


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


class Reads:
    def __init__(
        self,
        labels: dict[str, dict[str, str]],
        secrets: dict[str, Mapping[str, Any]] | None = None,
        synced: bool = True,
    ) -> None:
        self.labels = labels
        self.secrets = secrets or {}
        self.synced = synced
        self.asked: list[str] = []

    def namespace_labels(self, name: str) -> Mapping[str, str] | None:
        self.asked.append(name)
        return self.labels.get(name)

    def pull_secret(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        self.asked.append(f"{namespace}/{name}")
        if not self.synced:
            raise NotSynced("secrets")
        return self.secrets.get(f"{namespace}/{name}")


def test_a_service_account_gets_the_patch_for_its_namespace_labels() -> None:
    reads = Reads({"team-a": {"env": "dev"}})
    decision = ServiceAccountMutator(reads, frozenset({"kube-system"}))(request())
    assert decision == Decision.allow(patch=serviceaccount_mutation(SA, {"env": "dev"}))
    assert decision.patch, "a plain SA gets the pull secret"
    assert reads.asked == ["team-a", "team-a/builder-dockercfg"]


def test_a_previous_incarnations_managed_secret_may_be_named() -> None:
    reads = Reads({}, {"team-a/builder-dockercfg": MANAGED_SECRET})
    decision = ServiceAccountMutator(reads, frozenset())(request())
    assert decision == Decision.allow(patch=serviceaccount_mutation(SA, None))


def test_someone_elses_secret_under_the_managed_name_is_never_named() -> None:
    reads = Reads({}, {"team-a/builder-dockercfg": PLANTED_SECRET})
    decision = ServiceAccountMutator(reads, frozenset())(request())
    assert decision == Decision.allow(
        warnings=[
            "Secret builder-dockercfg exists and is not managed by the registry: "
            "not added to imagePullSecrets"
        ]
    )


def test_before_the_secret_cache_has_synced_nothing_is_named() -> None:
    decision = ServiceAccountMutator(Reads({}, synced=False), frozenset())(request())
    assert decision == Decision.allow(warnings=["builder-dockercfg not added yet: caches syncing"])


def test_an_opted_out_namespace_gets_no_patch() -> None:
    opted_out = Reads({"team-a": {"image.alauda.io/managed-pull-secret": "false"}})
    decision = ServiceAccountMutator(opted_out, frozenset())(request())
    assert decision == Decision.allow()
    assert opted_out.asked == ["team-a"], "no Secret lookup without a patch"


@pytest.mark.parametrize("obj", [None, {"metadata": {"generateName": "x-"}}])
def test_excluded_namespaces_and_unnamed_requests_are_left_alone(
    obj: dict[str, object] | None,
) -> None:
    reads = Reads({})
    mutator = ServiceAccountMutator(reads, frozenset({"kube-system"}))
    assert mutator(request(namespace="kube-system")) == Decision.allow()
    assert mutator(request(obj=obj)) == Decision.allow()
    assert "kube-system" not in reads.asked


FALLBACK = "builder-dockercfg-bcd2f"
STORED_SA: dict[str, object] = {  # an UPDATE: the SA has its uid and the recorded fallback
    "apiVersion": "v1",
    "kind": "ServiceAccount",
    "metadata": {
        "name": "builder",
        "uid": "sa-uid",
        "annotations": {"image.alauda.io/internal-registry-pull-secret-ref": FALLBACK},
    },
}


def fallback_secret(owner_uid: str) -> Mapping[str, Any]:
    return {
        "metadata": {
            "name": FALLBACK,
            "labels": {"image.alauda.io/managed-by": "registry-v2-policy"},
            "annotations": {"image.alauda.io/service-account.name": "builder"},
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ServiceAccount", "name": "builder", "uid": owner_uid}
            ],
        }
    }


def test_an_update_names_the_recorded_fallback_only_when_it_is_this_stored_sas_own() -> None:
    """A GitOps sync drops the fallback entry: the webhook puts it back, never the
    squatter's name; and it names nothing it cannot show is this SA's."""
    planted = {"team-a/builder-dockercfg": PLANTED_SECRET}
    reads = Reads({}, {**planted, f"team-a/{FALLBACK}": fallback_secret("sa-uid")})
    decision = ServiceAccountMutator(reads, frozenset())(request(obj=STORED_SA))
    assert list(decision.patch or []) == [
        {"op": "add", "path": "/imagePullSecrets", "value": [{"name": FALLBACK}]}
    ]

    creating = copy.deepcopy(STORED_SA)
    creating["metadata"]["uid"] = ""  # type: ignore[index]
    for obj, secret in [
        (STORED_SA, fallback_secret("someone-else")),  # not this SA's
        (STORED_SA, None),  # not there (yet)
        (creating, fallback_secret("sa-uid")),  # CREATE: no uid to check the owner against
    ]:
        secrets = {**planted, **({f"team-a/{FALLBACK}": secret} if secret else {})}
        decision = ServiceAccountMutator(Reads({}, secrets), frozenset())(request(obj=obj))
        assert not decision.patch
        assert decision.warnings


def test_a_recorded_fallback_is_not_swapped_for_a_plain_name_the_cache_cannot_see() -> None:
    """An Opaque squatter is not in the webhook's cache (pull-type Secrets only): the plain
    name looks free, but the reconciler found it taken and recorded the fallback. Naming
    the plain name would undo the reconciler's patch on every update, and it would redo
    it, for ever."""
    named = copy.deepcopy(STORED_SA)
    named["imagePullSecrets"] = [{"name": FALLBACK}]
    for secrets in ({f"team-a/{FALLBACK}": fallback_secret("sa-uid")}, {}):
        decision = ServiceAccountMutator(Reads({}, secrets), frozenset())(request(obj=named))
        assert not decision.patch
