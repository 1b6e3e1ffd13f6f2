"""Keep a repository's tags in the upstream registry to those its ImageStream holds.

Level-based, as a controller-runtime reconciler: the key is a repository
(``<namespace>/<name>``), and each reconcile compares what the registry has now with what
the stream holds now, whatever event queued it. A tag the stream no longer holds (the
stream deleted, the tag removed from its spec and status) is deleted from the registry;
deleting a tag that is gone already is no error, so a replay changes nothing.

The cache decides which tags look stale; a live read of the stream confirms them before
anything is deleted, because a push records its tag in the stream (step 5 of
``frontdoor.pushes``) a moment before the registry's tag moves (step 6), and the
cache may not have seen step 5 yet. What is left of that race (a push recording the tag
between the live read and the delete) costs only the registry's tag, never a pull: the
front door serves a tag by the digest the stream records, not by the registry's tag, and
the next push of the tag writes it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from kubernetes.client.exceptions import ApiException

from controller.registrytags.registry import RegistryUnavailable
from kube.logfields import fields
from kube.requeue import Requeue
from quota.objects import Obj
from quota.served import stale_tags

log = logging.getLogger(__name__)


class StreamCache(Protocol):
    def get(self, key: str) -> Obj | None: ...


class LiveStreams(Protocol):
    def stream(self, namespace: str, name: str) -> Obj | None:
        """The ImageStream as the API server has it now, None when there is none."""
        ...


class Registry(Protocol):
    def tags(self, repository: str) -> Sequence[str]: ...
    def delete_tag(self, repository: str, tag: str) -> bool: ...


def repository_key(repository: str) -> tuple[str, str] | None:
    """``(namespace, name)`` of a repository the Image API can record (``<namespace>/<name>``,
    as the front door accepts them); None for any other name, which is not ours to judge."""
    parts = repository.split("/")
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0], parts[1]


class RegistryTagsReconciler:
    def __init__(
        self,
        registry: Registry,
        streams: StreamCache,
        live: LiveStreams,
        *,
        acquire: Callable[[], None] = lambda: None,
    ) -> None:
        self._registry = registry
        self._streams = streams
        self._live = live
        self._acquire = acquire

    def reconcile(self, repository: str) -> None:
        key = repository_key(repository)
        if key is None:
            return
        try:
            tags = self._registry.tags(repository)
            stale = stale_tags(tags, self._streams.get(repository))
            if not stale:
                return
            self._acquire()
            stale = stale_tags(stale, self._live.stream(*key))
            for tag in stale:
                if self._registry.delete_tag(repository, tag):
                    log.info(
                        "deleted a registry tag no ImageStream holds",
                        extra=fields(repository=repository, tag=tag),
                    )
        except RegistryUnavailable as err:
            raise Requeue(f"the registry: {err}") from None
        except ApiException as err:
            raise Requeue(f"reading ImageStream {repository}: HTTP {err.status}") from None
