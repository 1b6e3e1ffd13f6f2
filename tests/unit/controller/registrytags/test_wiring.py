"""What feeds the registry tag reconciler: every ImageStream change queues its repository,
the registry's catalog queues the rest, and streams are cached as their tag names only."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from controller.config import DEFAULT_RESYNC_SECONDS
from controller.registrytags.reconciler import RegistryTagsReconciler
from controller.registrytags.registry import RegistryUnavailable
from controller.registrytags.wiring import (
    CATALOG_BURST,
    CATALOG_QPS,
    CATALOG_WALK_SECONDS,
    LiveImageStreams,
    RegistryTagsWiring,
)
from kube.ratelimit import RateLimiter
from kube.requeue import Requeue
from quota.measure import stream_tag_names
from tests.unit.controller.registrytags.fakes import Registry, Streams


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Catalog:
    def __init__(self, repositories: list[str], fail_after: int | None = None) -> None:
        self._repositories = repositories
        self._fail_after = fail_after

    def repositories(self) -> Iterator[str]:
        for position, repository in enumerate(self._repositories):
            if position == self._fail_after:
                raise RegistryUnavailable("GET /v2/_catalog: ReadTimeoutError")
            yield repository


def wiring(catalog: Catalog) -> RegistryTagsWiring:
    return RegistryTagsWiring(client.ApiClient(), RateLimiter(1, 1), catalog)  # type: ignore[arg-type]


def queued(built: RegistryTagsWiring) -> list[object]:
    keys = []
    while len(built.queue):
        key = built.queue.get(timeout=0)
        keys.append(key)
        built.queue.done(key)
    return keys


def test_every_change_to_a_stream_queues_its_repository() -> None:
    built = wiring(Catalog([]))
    stream = {"metadata": {"namespace": "team-a", "name": "app"}}
    for kind in ("ADDED", "MODIFIED", "DELETED"):
        built._enqueue(kind, stream, None)
    assert queued(built) == ["team-a/app"]


def test_the_catalog_queues_every_repository_and_a_failure_waits_for_the_next_walk() -> None:
    built = wiring(Catalog(["team-a/app", "team-b/old"]))
    built._enqueue_catalog()
    assert queued(built) == ["team-a/app", "team-b/old"]
    failing = wiring(Catalog(["team-a/app", "team-b/old"], fail_after=1))
    failing._enqueue_catalog()
    assert queued(failing) == ["team-a/app"]


def test_a_stream_is_cached_as_its_tag_names() -> None:
    stream = {
        "metadata": {"namespace": "team-a", "name": "app", "managedFields": [{"x": 1}]},
        "spec": {"tags": [{"name": "spec", "from": {"kind": "DockerImage", "name": "x"}}]},
        "status": {"tags": [{"tag": "v1", "items": [{"image": "sha256:" + "a" * 64}] * 50}]},
    }
    cached = wiring(Catalog([])).imagestreams.transform(stream)
    assert stream_tag_names(cached) == stream_tag_names(stream) == {"spec", "v1"}
    assert "items" not in cached["status"]["tags"][0]
    assert "managedFields" not in cached["metadata"]


# --- the live read: a missing stream is not a missing resource ----------------------------

OBJECT_NOT_FOUND = json.dumps(
    {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": 'imagestreams.image.alauda.io "app" not found',
        "reason": "NotFound",
        "details": {"name": "app", "group": "image.alauda.io", "kind": "imagestreams"},
        "code": 404,
    }
)
"""What kube-apiserver answers for a stream that does not exist (apimachinery's NewNotFound)."""
RESOURCE_NOT_SERVED = json.dumps(
    {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "the server could not find the requested resource",
        "reason": "NotFound",
        "details": {},
        "code": 404,
    }
)
"""What it answers when the ImageStream CRD is gone (its not-found handler)."""


class NotFound:
    """``CustomObjectsApi`` answering every GET with a 404 and ``body``."""

    def __init__(self, body: str) -> None:
        self.body = body

    def get_namespaced_custom_object(self, *args: object, **kwargs: object) -> object:
        err = ApiException(status=404, reason="Not Found")
        err.body = self.body
        raise err


def live_read(body: str) -> LiveImageStreams:
    live = LiveImageStreams(client.ApiClient())
    live._custom = NotFound(body)
    return live


def test_a_stream_that_does_not_exist_is_no_stream() -> None:
    assert live_read(OBJECT_NOT_FOUND).stream("team-a", "app") is None


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(RESOURCE_NOT_SERVED, id="not-found-handler-status"),
        pytest.param("404 page not found\n", id="plain-text"),
        pytest.param(OBJECT_NOT_FOUND.replace('"app"', '"other"'), id="another-objects-name"),
        pytest.param(OBJECT_NOT_FOUND.replace("imagestreams", "images"), id="another-kind"),
        pytest.param("", id="empty"),
    ],
)
def test_a_missing_imagestream_resource_is_never_taken_for_a_missing_stream(body: str) -> None:
    """Issue 17 review H6: with the CRD deleted every stream 404s; were that "no stream",
    every tag of the registry would be deleted."""
    with pytest.raises(Requeue, match="not served"):
        live_read(body).stream("team-a", "app")


def test_a_missing_resource_deletes_no_tag() -> None:
    registry = Registry({"team-a/app": ["v1", "v2"]})
    cache = Streams()  # the informer of a missing CRD is synced and empty (missing_ok)
    reconciler = RegistryTagsReconciler(registry, cache, live_read(RESOURCE_NOT_SERVED))
    with pytest.raises(Requeue):
        reconciler.reconcile("team-a/app")
    assert registry.deleted == []


# --- the catalog walk: bounded in period and in rate ------------------------------------


class Periods:
    """A stop event for ``run`` whose waits return at once: ``ticks`` periods pass, then it
    is set. Records the periods waited."""

    def __init__(self, ticks: int) -> None:
        self.ticks = ticks
        self.waited: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waited.append(timeout)
        return len(self.waited) > self.ticks

    def is_set(self) -> bool:
        return len(self.waited) > self.ticks


class CountedCatalog(Catalog):
    def __init__(self, repositories: list[str]) -> None:
        super().__init__(repositories)
        self.walks = 0

    def repositories(self) -> Iterator[str]:
        self.walks += 1
        yield from super().repositories()


def test_the_catalog_is_walked_at_start_then_every_walk_period_not_every_resync(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review H6: every resync (a minute at most) listed the whole catalog and every
    repository's tags; events drive the common case, the walk only finds what they missed."""
    catalog = CountedCatalog(["team-a/app"])
    built = wiring(catalog)
    monkeypatch.setattr("controller.registrytags.wiring.wait_all_synced", lambda *a: True)
    monkeypatch.setattr(built.runner, "start", lambda stop: None)
    monkeypatch.setattr(built.runner, "join", lambda: None)
    stop = Periods(2)
    built.run(stop)  # type: ignore[arg-type]
    assert catalog.walks == 1 + 2
    assert stop.waited == [CATALOG_WALK_SECONDS] * 3
    assert DEFAULT_RESYNC_SECONDS < CATALOG_WALK_SECONDS


def test_a_catalog_walk_queues_repositories_at_the_walk_rate() -> None:
    """Review H6: each repository queued costs the registry a tag list; a walk of a large
    catalog must pace them, not list every repository's tags at once."""
    repositories = [f"team-{n}/app" for n in range(100)]
    built = wiring(Catalog(repositories))
    clock = FakeClock()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    built.walk_limiter = RateLimiter(CATALOG_QPS, CATALOG_BURST, clock=clock, sleep=sleep)
    queued_at: list[float] = []
    add = built.queue.add

    def add_and_time(key: str) -> None:
        queued_at.append(clock.now)
        add(key)

    built.queue.add = add_and_time  # type: ignore[method-assign, assignment]
    built._enqueue_catalog()
    assert queued(built) == repositories
    assert queued_at[-1] - queued_at[0] == pytest.approx(
        (len(repositories) - CATALOG_BURST) / CATALOG_QPS
    )
