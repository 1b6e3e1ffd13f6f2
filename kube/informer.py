"""A watch-backed cache of one resource kind, like client-go's shared informer.

List, then watch from the list's resourceVersion; on a watch that ends, resume from the
last resourceVersion seen (bookmarks keep it fresh); on ``410 Gone`` or any error, relist
with backoff. Objects are plain dicts, the shape the pure cores take.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from kube import apierrors, metrics
from quota.objects import Obj, object_key, object_namespace

log = logging.getLogger(__name__)

ListFunc = Callable[..., Any]
Handler = Callable[[str, Obj, Obj | None], None]
"""Called with (event type ADDED/MODIFIED/DELETED, object, previous object or None)."""
Transform = Callable[[Obj], Obj]
"""Shapes each object before it is cached (client-go's ``SetTransform``): drop what no
reader needs, so a cache of tens of thousands of objects stays small."""

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"

PAGE_ATTEMPTS = 4
"""Tries of one list page that breaks on the wire before the whole list starts over: at
100,000 Images (200 pages), an API server loaded by every process listing at start-up
drops or stalls a page now and then, and starting over each time never finished
(issue 21's scale bench)."""
PAGE_TIMEOUT_SECONDS = 60
"""Seconds a page may take; the API server's own request timeout is 60 s."""
PAGE_RETRY_SECONDS = 1.0
"""Pause before a page is asked again: the API server is busy, not gone."""


class _Expired(Exception):
    """The watch's resourceVersion is too old: relist."""


class Informer:
    """Keeps ``store`` equal to the server's view of one resource, and reports changes."""

    def __init__(
        self,
        name: str,
        list_func: ListFunc,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
        watch_timeout_seconds: int = 300,
        max_backoff_seconds: float = 30.0,
        missing_ok: bool = False,
        index: Callable[[Obj], list[str]] | None = None,
        transform: Transform | None = None,
    ) -> None:
        self.name = name
        self._list_func = list_func
        self._selectors: dict[str, str] = {}
        if label_selector:
            self._selectors["label_selector"] = label_selector
        if field_selector:
            self._selectors["field_selector"] = field_selector
        self._page_size = page_size
        self._watch_timeout = watch_timeout_seconds
        self._max_backoff = max_backoff_seconds
        self._store: dict[str, Obj] = {}
        self._lock = threading.RLock()
        self._handlers: list[Handler] = []
        self._synced = threading.Event()
        self._resource_version = ""
        self._listed = False  # a full list succeeded once: any later one is a relist
        # Bumped, with the lock held, each time objects leave the cache without a DELETED
        # watch event: a relist that finds them gone, or a 404 that empties it.
        self._resets = 0
        metrics.INFORMER_RELISTS.labels(name)  # the series exists from the start, at zero
        self._thread: threading.Thread | None = None
        # For optional kinds (a CRD that may not be installed): a 404 on list means "no
        # objects"; the cache counts as synced and the list is retried periodically.
        self._missing_ok = missing_ok
        # One secondary index (value -> keys), e.g. Images by the digest they describe.
        self._index_func = index
        self._index: dict[str, set[str]] = {}
        # Objects by namespace: the webhook reads one namespace's LimitRanges and quotas on
        # every request, and must not scan every object in the cluster to find them.
        self._namespaces: dict[str, dict[str, Obj]] = {}
        # Applied to every listed and watched object, page by page, so the raw objects of
        # a large list are never all held at once.
        self.transform: Transform = transform or _unchanged

    # --- reading -------------------------------------------------------------------------

    def get(self, key: str) -> Obj | None:
        """The cached object for ``namespace/name`` (or ``name`` when cluster-scoped)."""
        with self._lock:
            return self._store.get(key)

    def by_index(self, value: str) -> list[Obj]:
        with self._lock:
            return [self._store[k] for k in sorted(self._index.get(value, ())) if k in self._store]

    def list(self, namespace: str | None = None) -> list[Obj]:
        with self._lock:
            if namespace is None:
                return list(self._store.values())
            return list(self._namespaces.get(namespace, {}).values())

    def _reindex(self) -> None:
        """Rebuild the indexes from the store; called with the lock held."""
        namespaces: dict[str, dict[str, Obj]] = {}
        for key, obj in self._store.items():
            namespaces.setdefault(object_namespace(obj), {})[key] = obj
        self._namespaces = namespaces
        if self._index_func is None:
            return
        index: dict[str, set[str]] = {}
        for key, obj in self._store.items():
            for value in self._index_func(obj):
                index.setdefault(value, set()).add(key)
        self._index = index

    def _index_add(self, key: str, obj: Obj) -> None:
        self._namespaces.setdefault(object_namespace(obj), {})[key] = obj
        if self._index_func is not None:
            for value in self._index_func(obj):
                self._index.setdefault(value, set()).add(key)

    def _index_remove(self, key: str, obj: Obj | None) -> None:
        if obj is not None:
            namespace = object_namespace(obj)
            members = self._namespaces.get(namespace)
            if members is not None:
                members.pop(key, None)
                if not members:  # pruned: deleted namespaces leave nothing behind
                    del self._namespaces[namespace]
        if self._index_func is not None and obj is not None:
            for value in self._index_func(obj):
                keys = self._index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._index[value]

    @property
    def resets(self) -> int:
        """How many times objects left the cache without a watch event saying they were
        deleted (a relist, or a 404 on an optional kind that emptied it). A count taken
        from the cache may fall for such a reset with nothing deleted on the server: an
        aggregated API re-registering answers 404 for a while. Read it after reading the
        cache: objects leave it and this changes under one lock."""
        with self._lock:
            return self._resets

    def has_synced(self) -> bool:
        return self._synced.is_set()

    def wait_synced(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    def add_handler(self, handler: Handler) -> None:
        """Register before :meth:`start`; handlers run on the informer's thread: keep them
        fast (enqueue a key, nothing more)."""
        self._handlers.append(handler)

    # --- running -------------------------------------------------------------------------

    def start(self, stop: threading.Event) -> threading.Thread:
        self._thread = threading.Thread(
            target=self.run, args=(stop,), name=f"informer-{self.name}", daemon=True
        )
        self._thread.start()
        return self._thread

    def run(self, stop: threading.Event) -> None:
        backoff = 0.5
        while not stop.is_set():
            try:
                if not self._resource_version:
                    self._relist(stop)
                    backoff = 0.5
                self._watch(stop)
            except _Expired:
                log.info("informer %s: resourceVersion expired, relisting", self.name)
                self._resource_version = ""
            except Exception as err:
                if self._missing_ok and apierrors.is_not_found(err):
                    self._mark_empty()
                    wait = self._max_backoff
                else:
                    log.warning(
                        "informer %s: %s; relisting in %.1fs", self.name, _describe(err), backoff
                    )
                    wait = backoff
                    backoff = min(backoff * 2, self._max_backoff)
                self._resource_version = ""
                if stop.wait(wait):
                    return

    def _mark_empty(self) -> None:
        with self._lock:
            old, self._store = self._store, {}
            self._index = {}
            self._namespaces = {}
            if old:
                self._resets += 1
        for obj in old.values():
            self._dispatch(DELETED, obj, None)
        self._synced.set()

    def _page(self, stop: threading.Event | None, **kwargs: Any) -> Obj:
        """One page of the list, asked again (same continue token, which etcd honours for
        minutes) when it breaks on the wire, up to ``PAGE_ATTEMPTS`` tries. An API error
        (410 Gone: the token expired) is not retried here: ``_relist`` decides."""
        for attempt in range(1, PAGE_ATTEMPTS + 1):
            try:
                response = self._list_func(
                    _preload_content=False, _request_timeout=PAGE_TIMEOUT_SECONDS, **kwargs
                )
                page: Obj = json.loads(response.data)
                return page
            except (urllib3.exceptions.HTTPError, OSError) as err:
                if attempt == PAGE_ATTEMPTS or (stop is not None and stop.is_set()):
                    raise
                log.warning(
                    "informer %s: a list page failed (%s); asking for it again (%d/%d)",
                    self.name,
                    _describe(err),
                    attempt + 1,
                    PAGE_ATTEMPTS,
                )
                if (stop or threading.Event()).wait(PAGE_RETRY_SECONDS):
                    raise
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _relist(self, stop: threading.Event | None = None) -> None:
        items: list[Obj] = []
        token: str | None = None
        resource_version = ""
        while True:
            kwargs: dict[str, Any] = dict(self._selectors, limit=self._page_size)
            if token:
                kwargs["_continue"] = token
            try:
                page = self._page(stop, **kwargs)
            except ApiException as err:
                if not (token and apierrors.is_gone(err)):
                    raise
                # The continue token outlived etcd's compaction (kube-apiserver compacts
                # every 5 min): a paged list slower than that would start over and expire
                # again for ever on a busy API server. client-go's pager
                # (FullListIfExpired) asks once for the whole list instead; so do we.
                log.warning(
                    "informer %s: the list's continue token expired after %d objects; "
                    "listing everything in one request",
                    self.name,
                    len(items),
                )
                items = []
                page = self._page(stop, **self._selectors)
                token = None
            items.extend(self.transform(item) for item in page.get("items") or [])
            metadata = page.get("metadata") or {}
            resource_version = metadata.get("resourceVersion", "")
            token = metadata.get("continue")
            if not token:
                break
        fresh = {object_key(item): item for item in items}
        with self._lock:
            old = self._store
            self._store = fresh
            self._reindex()
            if old.keys() - fresh.keys():
                self._resets += 1
        self._resource_version = resource_version
        if self._listed:
            metrics.INFORMER_RELISTS.labels(self.name).inc()
        self._listed = True
        for key, obj in fresh.items():
            previous = old.get(key)
            if previous is None:
                self._dispatch(ADDED, obj, None)
            elif _rv(previous) != _rv(obj):
                self._dispatch(MODIFIED, obj, previous)
        for key, obj in old.items():
            if key not in fresh:
                self._dispatch(DELETED, obj, None)
        self._synced.set()
        log.info("informer %s: listed %d objects", self.name, len(fresh))

    def _watch(self, stop: threading.Event) -> None:
        response = self._list_func(
            watch=True,
            resource_version=self._resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=self._watch_timeout,
            _preload_content=False,
            _request_timeout=(10, self._watch_timeout + 30),
            **self._selectors,
        )
        try:
            for event in _events(response):
                if stop.is_set():
                    return
                self._apply(event)
        finally:
            response.close()
            response.release_conn()

    def _apply(self, event: Obj) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            if apierrors.status_is_gone(obj):
                raise _Expired()
            raise RuntimeError(f"watch error: {obj.get('message', obj)}")
        version = _rv(obj)
        if version:
            self._resource_version = version
        if kind == "BOOKMARK":
            return
        obj = self.transform(obj)
        key = object_key(obj)
        with self._lock:
            previous = self._store.get(key)
            self._index_remove(key, previous)
            if kind == DELETED:
                self._store.pop(key, None)
            else:
                self._store[key] = obj
                self._index_add(key, obj)
        if kind == DELETED:
            self._dispatch(DELETED, obj, None)
        elif previous is None:
            self._dispatch(ADDED, obj, None)
        else:
            self._dispatch(MODIFIED, obj, previous)

    def _dispatch(self, kind: str, obj: Obj, previous: Obj | None) -> None:
        for handler in self._handlers:
            try:
                handler(kind, obj, previous)
            except Exception:
                log.exception("informer %s: handler failed on %s", self.name, object_key(obj))


def wait_all_synced(informers: Iterable[Informer], stop: threading.Event) -> bool:
    """Block until every informer has listed once; False when ``stop`` came first."""
    for informer in informers:
        while not informer.wait_synced(1.0):
            if stop.is_set():
                return False
    return True


def _events(response: Any) -> Iterator[Obj]:
    for line in iter_resp_lines(response):
        if line:
            yield json.loads(line)


def _unchanged(obj: Obj) -> Obj:
    return obj


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _describe(err: Exception) -> str:
    if isinstance(err, ApiException):
        if apierrors.is_gone(err):
            return "resourceVersion expired (410)"
        return f"API error {err.status} {err.reason}"
    return f"{type(err).__name__}: {err}"
