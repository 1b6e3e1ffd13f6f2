"""``/mutate/serviceaccounts``: point every ServiceAccount at its managed pull secret.

The patch adds the managed Secret to ``imagePullSecrets`` (once, after the user's entries)
and the ``internal-registry-pull-secret-ref`` annotation, unless a Secret under that name
is someone else's: pods must never pull with a planted credential. It is the same on
dry-run, and has no side effect: the Secret itself is the reconciler's job.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from quota.decision import Decision
from quota.objects import object_name
from quota.pullsecrets.desired_secret import may_reference
from quota.pullsecrets.names import secret_name_for
from quota.pullsecrets.serviceaccount_patch import serviceaccount_mutation
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
