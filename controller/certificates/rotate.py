"""``image-registry-webhook certs rotate``: ask the certificate manager for a new CA now.

The command only marks the Secret (an annotation with the time of the request); the
leader, which watches the Secret, starts the rotation at once with the same rules as a
scheduled renewal, so the overlap that keeps the webhook trusted is never skipped. The
command then waits until the leader has taken the request up.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException

from controller.certificates.material import ROTATE_HANDLED, ROTATE_REQUESTED, SECRET_NAME
from controller.certificates.reconciler import DEFAULT_CERTIFICATE_PROPAGATION_SECONDS
from kube import apierrors
from quota.timestamps import format_micro_time

WAIT_SECONDS = 60.0
"""Default of ``certs rotate --timeout``: the leader acts on the Secret's watch event within
a second; a minute covers a leader failover (a 15 s Lease) on a slow API server."""
POLL_SECONDS = 0.5
MERGE_PATCH = "application/merge-patch+json"


class RotationError(Exception):
    """The request could not be made, or nobody took it up."""


class SecretCalls(Protocol):
    """The two calls of ``kubernetes.client.CoreV1Api`` this command makes."""

    def patch_namespaced_secret(self, name: str, namespace: str, body: Any, **kw: Any) -> Any: ...
    def read_namespaced_secret(self, name: str, namespace: str, **kw: Any) -> Any: ...


def request_rotation(core: SecretCalls, namespace: str, now: dt.datetime) -> str:
    """Mark the Secret; return the request's value (its time, to the microsecond, so two
    requests never look alike)."""
    value = format_micro_time(now)
    patch = {"metadata": {"annotations": {ROTATE_REQUESTED: value}}}
    try:
        core.patch_namespaced_secret(SECRET_NAME, namespace, patch, _content_type=MERGE_PATCH)
    except ApiException as err:
        if apierrors.is_not_found(err):
            raise RotationError(
                f"there is no Secret {namespace}/{SECRET_NAME}: is the controller running "
                "with --manage-certificates (and --namespace set to where it runs)?"
            ) from err
        raise
    return value


def wait_taken_up(
    core: SecretCalls,
    namespace: str,
    value: str,
    timeout: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Whether the leader records the request as handled within ``timeout`` seconds."""
    deadline = clock() + timeout
    while True:
        secret = core.read_namespaced_secret(SECRET_NAME, namespace)
        annotations = (secret.metadata.annotations if secret.metadata else None) or {}
        if annotations.get(ROTATE_HANDLED) == value:
            return True
        if clock() >= deadline:
            return False
        sleep(POLL_SECONDS)


def rotate(core: SecretCalls, namespace: str, timeout: float, now: dt.datetime) -> str:
    """Request a rotation and wait for the leader; the message for the user."""
    value = request_rotation(core, namespace, now)
    if timeout <= 0:
        return f"rotation requested at {value}"
    if not wait_taken_up(core, namespace, value, timeout):
        raise RotationError(
            f"rotation requested at {value}, but no certificate manager took it up within "
            f"{timeout:g}s: is a controller running with --manage-certificates? The request "
            "stays on the Secret and is acted on when one does."
        )
    return (
        f"rotation requested at {value} and started: the new CA is in the caBundle beside the "
        "old one now, signs the serving certificate after the controller's "
        f"--certificate-propagation-seconds ({DEFAULT_CERTIFICATE_PROPAGATION_SECONDS:g} by "
        "default), and the old CA leaves after as long again"
    )
