"""The confirmed steps' safety on live reads: a push that lands during the history write
keeps its event, an Image referenced again or changed since it was read is not deleted."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException

from controller.imageprune import run as running
from controller.imageprune.config import PruneConfig
from controller.imageprune.plan import ImageRemoval, Policy, plan
from controller.imageprune.references import InUse
from controller.imageprune.run import (
    CONFLICT_RETRIES,
    PruneFailed,
    confirm,
    delete_images,
    prune_stream_history,
    registry_hosts,
)
from tests.unit.controller.imageprune.samples import NOW, by_digest, digest, event, image, stream

CONFIG = PruneConfig(policy=Policy(keep_tag_revisions=1))


def conflict() -> ApiException:
    return ApiException(status=409, reason="Conflict")


class Api:
    """One stream whose writes may conflict, and Images deleted with preconditions."""

    def __init__(self, live: dict[str, Any]) -> None:
        self.live = live
        self.before_write: list[Any] = []
        """Called before each write is judged: a push landing in between."""
        self.written: list[dict[str, Any]] = []
        self.streams_now: list[dict[str, Any]] = []
        self.deleted: list[tuple[str, str]] = []
        self.delete_answers: dict[str, ApiException] = {}

    def stream(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.live)

    def write_stream_status(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.before_write:
            self.before_write.pop(0)(self)
        if body["metadata"]["resourceVersion"] != self.live["metadata"]["resourceVersion"]:
            raise conflict()
        self.written.append(body)
        self.live = body
        return body

    def streams(self) -> list[dict[str, Any]]:
        return self.streams_now

    def delete_image(self, name: str, resource_version: str) -> None:
        if name in self.delete_answers:
            raise self.delete_answers[name]
        self.deleted.append((name, resource_version))


def push_lands(api: Api) -> None:
    """A push's tag event, written by the front door over its own read."""
    api.live["status"]["tags"][0]["items"].insert(0, event(9))
    api.live["metadata"]["resourceVersion"] = str(int(api.live["metadata"]["resourceVersion"]) + 1)


def test_a_push_during_the_history_write_keeps_its_event() -> None:
    api = Api(stream("app", {"v1": [event(2), event(1)]}))
    api.before_write.append(push_lands)
    removed = prune_stream_history(api, "team-a/app", CONFIG, NOW, frozenset())  # type: ignore[arg-type]
    assert len(api.written) == 1
    items = [item["image"] for item in api.written[0]["status"]["tags"][0]["items"]]
    assert items == [digest(9)]  # the push's event is the newest; the count keeps only it
    assert removed == 2


def test_endless_conflicts_fail_the_run_saying_so() -> None:
    api = Api(stream("app", {"v1": [event(2), event(1)]}))
    api.before_write.extend([push_lands] * CONFLICT_RETRIES)
    with pytest.raises(PruneFailed, match="changed under each"):
        prune_stream_history(api, "team-a/app", CONFIG, NOW, frozenset())  # type: ignore[arg-type]


def test_a_stream_gone_meanwhile_is_nothing_to_do() -> None:
    api = Api(stream("app", {"v1": [event(2), event(1)]}))
    api.live = None  # type: ignore[assignment]
    assert prune_stream_history(api, "team-a/app", CONFIG, NOW, frozenset()) == 0  # type: ignore[arg-type]


def removal(n: int) -> ImageRemoval:
    return ImageRemoval(digest(n), f"sha256-{n:064x}", ("team-a/app",), 10)


def test_an_image_a_stream_references_again_is_not_deleted() -> None:
    images = by_digest(image(1), image(2))
    for obj in images.values():
        obj["metadata"]["resourceVersion"] = "5"
    api = Api(stream("app", {}))
    api.streams_now = [stream("again", {"v1": [event(1)]})]
    done = delete_images(api, [removal(1), removal(2)], images)  # type: ignore[arg-type]
    assert [r.digest for r in done] == [digest(2)]
    assert api.deleted == [(f"sha256-{2:064x}", "5")]


def test_an_image_changed_since_it_was_read_is_not_deleted_and_one_gone_counts() -> None:
    images = by_digest(image(1), image(2))
    api = Api(stream("app", {}))
    api.delete_answers[f"sha256-{1:064x}"] = conflict()
    api.delete_answers[f"sha256-{2:064x}"] = ApiException(status=404, reason="Not Found")
    done = delete_images(api, [removal(1), removal(2)], images)  # type: ignore[arg-type]
    assert [r.digest for r in done] == [digest(2)]


def test_the_registry_hosts_are_its_names_its_routes_and_those_its_images_name() -> None:
    config = {"spec": {"routes": [{"name": "r", "hostname": "registry.example.com"}]}}
    hosts = registry_hosts(["image-registry.svc:5000"], config, [image(1)])
    assert hosts == {"image-registry.svc:5000", "registry.example.com", "registry.example:5000"}


class Registry:
    def __init__(self) -> None:
        self.deleted: list[tuple[str, str]] = []

    def delete_manifest(self, repository: str, digest: str) -> bool:
        self.deleted.append((repository, digest))
        return True


class Cluster(Api):
    """Streams and Images listed live; a push may land right after an Image's delete."""

    def __init__(self, streams: list[dict[str, Any]], images: list[dict[str, Any]]) -> None:
        super().__init__(streams[0])
        self.all_streams = streams
        self.all_images = images
        self.after_deletes: list[Any] = []

    def streams(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self.all_streams)

    def images(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self.all_images)

    def delete_image(self, name: str, resource_version: str) -> None:
        super().delete_image(name, resource_version)
        self.all_images = [i for i in self.all_images if i["metadata"]["name"] != name]
        if self.after_deletes:
            self.after_deletes.pop(0)(self)


def test_a_manifest_pushed_again_after_its_image_went_stays_in_the_registry() -> None:
    images = [image(1), image(2), image(3)]
    cluster = Cluster([stream("app", {"v1": [event(3)]})], images)

    def pushed_again(api: Cluster) -> None:
        api.all_streams.append(stream("copy", {"v1": [event(1)]}))
        api.all_images.append(image(1))

    cluster.after_deletes.append(pushed_again)
    first = plan(cluster.streams(), by_digest(*images), {}, CONFIG.policy, NOW)
    registry = Registry()
    done = confirm(cluster, registry, CONFIG, first, NOW, InUse({}, ()))  # type: ignore[arg-type]
    assert [r.digest for r in done.images] == [digest(1), digest(2)]
    assert registry.deleted == [("team-a/app", digest(2))]


def test_an_api_server_that_does_not_answer_is_a_message_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def timed_out(*args: object) -> int:
        raise urllib3.exceptions.ReadTimeoutError(None, "/", "Read timed out.")  # type: ignore[arg-type]

    monkeypatch.setattr(running, "api_client", lambda kubeconfig: contextlib.nullcontext())
    monkeypatch.setattr(running, "prune", timed_out)
    assert running.run_prune(CONFIG) == running.EXIT_FAILED
    assert "prune images: the API server did not answer" in capsys.readouterr().err
