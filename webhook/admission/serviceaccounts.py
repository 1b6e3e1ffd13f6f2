"""``/mutate/serviceaccounts``: point every ServiceAccount at its managed pull secret.

The patch adds the managed Secret to ``imagePullSecrets`` (once, after the user's entries)
and the ``internal-registry-pull-secret-ref`` annotation, unless a Secret under that name
is someone else's: pods must never pull with a planted credential. Then the reconciler
gives the SA a fallback Secret under a generated name, which only it can know (the SA
has no such Secret at CREATE); on later updates the webhook names the fallback recorded
in the annotation, once it is cached and the SA's own. It is the same on
dry-run, and has no side effect: the Secret itself is the reconciler's job.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from quota.decision import Decision
from quota.objects import mapping, object_name
from quota.pullsecrets.desired_secret import may_reference
from quota.pullsecrets.names import ANNOTATION_PULL_SECRET_REF, is_fallback_name, secret_name_for
from quota.pullsecrets.serviceaccount_patch import add_pull_secret_patch, serviceaccount_mutation
from webhook.admission.review import AdmissionRequest
from webhook.caches import NotSynced

log = logging.getLogger(__name__)


class ServiceAccountReads(Protocol):
    """What the mutator reads, from the watch caches (``WebhookCaches``)."""

    def namespace_labels(self, name: str) -> Mapping[str, str] | None: ...

    def pull_secret(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        """Metadata of the pull Secret, None when absent; NotSynced before the first list."""
        ...


class ServiceAccountMutator:
    def __init__(self, reads: ServiceAccountReads, excluded: frozenset[str]) -> None:
        self._reads = reads
        self._excluded = excluded

    def __call__(self, request: AdmissionRequest) -> Decision:
        sa = request.object
        if sa is None or request.namespace in self._excluded:
            return Decision.allow()
        patch = serviceaccount_mutation(sa, self._reads.namespace_labels(request.namespace))
        if not patch:
            return Decision.allow()
        secret_name = secret_name_for(object_name(sa))  # named, or the patch would be empty
        try:
            recorded = self._recorded_fallback(sa)
            if recorded is not None:
                return self._name_fallback(request.namespace, sa, recorded)
            existing = self._reads.pull_secret(request.namespace, secret_name)
        except NotSynced:
            # Unknown is not "free": leave it to the reconciler, which reads live.
            return Decision.allow(warnings=[f"{secret_name} not added yet: caches syncing"])
        if not may_reference(existing, sa):
            log.warning(
                "not pointing serviceaccount %s/%s at Secret %s: it is not the managed one",
                request.namespace,
                request.name,
                secret_name,
            )
            return Decision.allow(
                warnings=[
                    f"Secret {secret_name} exists and is not managed by the registry: "
                    "not added to imagePullSecrets"
                ]
            )
        return Decision.allow(patch=patch)

    @staticmethod
    def _recorded_fallback(sa: Mapping[str, Any]) -> str | None:
        """The fallback the reconciler recorded on a stored SA (it has a uid), if any.

        While one is recorded the reconciler has found the plain name taken, which this
        cache cannot always see (it holds pull-type Secrets only, and a squatter's may be
        Opaque): naming the plain name again would undo the reconciler's patch, which would
        redo it. The reconciler records the plain name again once it is free.
        """
        meta = mapping(sa.get("metadata"))
        recorded = mapping(meta.get("annotations")).get(ANNOTATION_PULL_SECRET_REF)
        if not isinstance(recorded, str) or not is_fallback_name(recorded, object_name(sa)):
            return None
        return recorded if meta.get("uid") else None  # CREATE: a copied annotation proves nothing

    def _name_fallback(self, namespace: str, sa: Mapping[str, Any], recorded: str) -> Decision:
        """Name the recorded fallback (back, after a GitOps sync dropped it) once it is
        cached and this SA's own; otherwise change nothing and let the reconciler heal."""
        secret = self._reads.pull_secret(namespace, recorded)
        if secret is None or not may_reference(secret, sa):
            return Decision.allow(warnings=[f"{recorded} not added yet: not cached as this SA's"])
        return Decision.allow(patch=add_pull_secret_patch(sa, recorded))
