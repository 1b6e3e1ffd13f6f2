"""The registry's read-only switch, as the front door obeys it: while
``configs.imageregistry.operator.alauda.io/cluster`` says ``spec.readOnly: true`` (the field
of OpenShift's registry Config), every write is refused, so that ``prune images
--prune-registry`` can run distribution's garbage collection, which must not run while a
push is in flight (an upload that lands between its mark and its sweep loses its blobs).

A write is any ``/v2/`` request other than GET or HEAD: a blob upload's start, chunks and
finish, a manifest PUT, a DELETE. The refusal is what distribution answers in its own
``maintenance.readonly`` mode (405 Method Not Allowed with ``Allow: GET, HEAD``, checked
against the registry binary of ``make ocitools``), in the spec's error format with a
message a client prints, plus ``Retry-After``. Reads go on. Until the Config has been
read once the worker is not ready (``not_ready``), so a worker that starts during a
collection never takes a write it should have refused.
"""

from __future__ import annotations

import functools
import threading
from typing import Final

from kubernetes import client

from frontdoor import distribution as oci
from kube.informer import Informer
from quota.names import CONFIGS, OPERATOR_GROUP, OPERATOR_VERSION
from quota.objects import mapping

CONFIG_NAME: Final = "cluster"
"""The registry operator's singleton Config."""
ALLOW: Final = ("GET", "HEAD")
"""What distribution still serves in read-only mode, in its ``Allow`` header's order."""
READ_METHODS: Final = frozenset(ALLOW)
RETRY_AFTER_SECONDS: Final = 300
"""What a refused client is told to wait: a collection of a small registry takes seconds,
a large one minutes; pushes are retried by people and pipelines, not in a tight loop."""
READ_ONLY_MESSAGE: Final = (
    "the registry is read-only while its storage is garbage-collected; pulls work, "
    "retry the push later"
)


def read_only_refusal() -> oci.RegistryError:
    refusal = oci.unsupported(READ_ONLY_MESSAGE, allow=ALLOW)
    refusal.headers = {**refusal.headers, "Retry-After": str(RETRY_AFTER_SECONDS)}
    return refusal


class ReadOnlySwitch:
    """A watch of the one Config object; ``refuses(method)`` while it says read-only."""

    def __init__(self, api: client.ApiClient) -> None:
        custom = client.CustomObjectsApi(api)
        self._config = Informer(
            "registry-config",
            functools.partial(
                custom.list_cluster_custom_object, OPERATOR_GROUP, OPERATOR_VERSION, CONFIGS
            ),
            field_selector=f"metadata.name={CONFIG_NAME}",
            missing_ok=True,
        )
        self._stop = threading.Event()

    def start(self) -> ReadOnlySwitch:
        self._config.start(self._stop)
        return self

    def stop(self) -> None:
        self._stop.set()

    def read_only(self) -> bool:
        spec = mapping(mapping(self._config.get(CONFIG_NAME)).get("spec"))
        return spec.get("readOnly") is True

    def refuses(self, method: str) -> bool:
        return method not in READ_METHODS and self.read_only()

    def not_ready(self) -> str | None:
        """A readiness check: None once the Config has been read."""
        return None if self._config.has_synced() else "the registry Config is not read yet"
