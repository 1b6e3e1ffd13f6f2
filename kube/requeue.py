"""The one way a reconcile says "not an error, try again", apart from the runner
(``kube.runner``) that acts on it, so that a reconciler's module imports no metrics: the
command reads reconcilers' defaults before the metrics directory exists."""

from __future__ import annotations


class Requeue(Exception):
    """Not an error: the state moved under the reconcile (a write lost a race, a cache is
    behind the API server, a dependency could not be asked); try the key again with the
    queue's per-key backoff, as controller-runtime's ``Result{Requeue: true}``. A known
    delay is no exception: the reconcile returns it (``Result.RequeueAfter``)."""
