"""Watch-backed caches the webhook server reads on its hot path (no list calls there)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from webhook.engine.informer import Informer

log = logging.getLogger(__name__)


class WebhookCaches:
    """Informers started in each gunicorn worker (after the fork), stopped with it."""

    def __init__(self, api: client.ApiClient) -> None:
        self._core = client.CoreV1Api(api)
        self.namespaces = Informer("namespaces", self._core.list_namespace)
        self._stop = threading.Event()

    @property
    def informers(self) -> list[Informer]:
        return [self.namespaces]

    def start(self) -> None:
        for informer in self.informers:
            informer.start(self._stop)

    def stop(self) -> None:
        self._stop.set()

    def not_ready(self) -> str | None:
        """A readiness check: None once every cache has synced."""
        pending = [i.name for i in self.informers if not i.has_synced()]
        return f"caches not synced: {', '.join(pending)}" if pending else None

    def namespace_labels(self, name: str) -> Mapping[str, str] | None:
        """From the cache; before it has synced (or for a namespace it has not seen yet),
        one direct read, so a fresh worker never guesses."""
        namespace = self.namespaces.get(name)
        if namespace is None:
            try:
                response = self._core.read_namespace(
                    name, _preload_content=False, _request_timeout=3
                )
                namespace = json.loads(response.data)
            except ApiException as err:
                if err.status == 404:
                    return None
                raise
        metadata = namespace.get("metadata") or {}
        labels: Mapping[str, str] = metadata.get("labels") or {}
        return labels
