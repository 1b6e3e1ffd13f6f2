"""``/mutate/serviceaccounts``: point every ServiceAccount at its managed pull secret.

The patch adds the managed Secret to ``imagePullSecrets`` (once, after the user's entries)
and the ``internal-registry-pull-secret-ref`` annotation. It is the same on dry-run, and
has no side effect: the Secret itself is the reconciler's job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from quota.decision import Decision
from quota.pullsecrets.serviceaccount_patch import serviceaccount_mutation
from webhook.admission.review import AdmissionRequest

NamespaceLabels = Callable[[str], Mapping[str, str] | None]
"""Labels of a namespace by name (None when unknown)."""


class ServiceAccountMutator:
    def __init__(self, namespace_labels: NamespaceLabels, excluded: frozenset[str]) -> None:
        self._namespace_labels = namespace_labels
        self._excluded = excluded

    def __call__(self, request: AdmissionRequest) -> Decision:
        sa = request.object
        if sa is None or request.namespace in self._excluded:
            return Decision.allow()
        labels = self._namespace_labels(request.namespace)
        return Decision.allow(patch=serviceaccount_mutation(sa, labels))
