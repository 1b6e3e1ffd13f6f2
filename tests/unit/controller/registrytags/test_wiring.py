"""What feeds the registry tag reconciler: every ImageStream change queues its repository,
the registry's catalog queues the rest, and streams are cached as their tag names only."""

from __future__ import annotations

from collections.abc import Iterator

from kubernetes import client

from controller.registrytags.registry import RegistryUnavailable
from controller.registrytags.wiring import RegistryTagsWiring
from kube.ratelimit import RateLimiter
from kube.settings import Settings
from quota.measure import stream_tag_names


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
    return RegistryTagsWiring(client.ApiClient(), Settings(), RateLimiter(1, 1), catalog)  # type: ignore[arg-type]


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
