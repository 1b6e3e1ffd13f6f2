"""The registry's tags follow the ImageStreams: what no stream holds is deleted, what a
stream holds (in the cache or, a moment ago, only in the API server) never is."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from controller.registrytags.reconciler import RegistryTagsReconciler, repository_key
from controller.registrytags.registry import RegistryUnavailable
from kube.requeue import Requeue
from tests.unit.controller.registrytags.fakes import Registry, Streams


def stream(*tags: str) -> dict[str, Any]:
    return {"status": {"tags": [{"tag": t, "items": [{"image": "sha256:x"}]} for t in tags]}}


def reconciler(registry: Registry, streams: Streams) -> RegistryTagsReconciler:
    return RegistryTagsReconciler(registry, streams, streams)


def test_a_deleted_streams_tags_are_deleted_from_the_registry() -> None:
    registry, streams = Registry({"team-a/app": ["v1", "v2"]}), Streams()
    reconciler(registry, streams).reconcile("team-a/app")
    assert registry.deleted == [("team-a/app", "v1"), ("team-a/app", "v2")]
    assert registry.tags_of["team-a/app"] == []


def test_a_tag_removed_from_a_stream_goes_and_the_others_stay() -> None:
    registry, streams = Registry({"team-a/app": ["v1", "v2"]}), Streams()
    streams.cached["team-a/app"] = streams.live["team-a/app"] = stream("v1")
    reconciler(registry, streams).reconcile("team-a/app")
    assert registry.deleted == [("team-a/app", "v2")]


def test_each_deleted_tag_is_logged_with_its_repository(caplog: pytest.LogCaptureFixture) -> None:
    registry, streams = Registry({"team-a/app": ["v1", "v2"]}), Streams()
    streams.cached["team-a/app"] = streams.live["team-a/app"] = stream("v1")
    with caplog.at_level(logging.INFO, logger="controller.registrytags.reconciler"):
        reconciler(registry, streams).reconcile("team-a/app")
    lines = [(r.getMessage(), r.fields) for r in caplog.records]  # type: ignore[attr-defined]
    assert lines == [
        ("deleted a registry tag no ImageStream holds", {"repository": "team-a/app", "tag": "v2"})
    ]


def test_a_tag_the_cache_has_not_seen_yet_is_kept_on_the_live_read() -> None:
    """A push records its tag in the stream, then moves the registry's tag: a cache a
    moment behind must not make the reconciler delete a tag just pushed."""
    registry, streams = Registry({"team-a/app": ["v1", "new"]}), Streams()
    streams.cached["team-a/app"] = stream("v1")
    streams.live["team-a/app"] = stream("v1", "new")
    reconciler(registry, streams).reconcile("team-a/app")
    assert registry.deleted == []


def test_a_repository_in_step_costs_no_api_call() -> None:
    registry, streams = Registry({"team-a/app": ["v1"]}), Streams()
    streams.cached["team-a/app"] = stream("v1")
    reconciler(registry, streams).reconcile("team-a/app")
    reconciler(registry, streams).reconcile("team-a/none")  # no tags in the registry
    assert (registry.deleted, streams.live_reads) == ([], 0)


def test_a_replay_changes_nothing_and_a_tag_gone_already_is_no_error() -> None:
    registry, streams = Registry({"team-a/app": ["v1"]}), Streams()
    done = reconciler(registry, streams)
    done.reconcile("team-a/app")
    done.reconcile("team-a/app")
    assert registry.deleted == [("team-a/app", "v1")]
    registry.tags_of["team-a/app"] = ["v1"]
    registry.delete_tag = lambda repository, tag: False  # type: ignore[method-assign]
    done.reconcile("team-a/app")  # deleted meanwhile by someone else: fine


@pytest.mark.parametrize("repository", ["library/x/y", "single", "/x", "x/"])
def test_a_repository_the_image_api_cannot_record_is_left_alone(repository: str) -> None:
    registry, streams = Registry({repository: ["v1"]}), Streams()
    reconciler(registry, streams).reconcile(repository)
    assert registry.deleted == []
    assert repository_key(repository) is None


def test_an_unreachable_registry_or_api_server_is_retried() -> None:
    registry, streams = Registry({"team-a/app": ["v1"]}), Streams()
    registry.fail = RegistryUnavailable("GET /v2/team-a/app/tags/list: ConnectTimeoutError")
    with pytest.raises(Requeue, match="the registry: GET"):
        reconciler(registry, streams).reconcile("team-a/app")
    registry.fail = None
    streams.fail = ApiException(status=503)
    with pytest.raises(Requeue, match="HTTP 503"):
        reconciler(registry, streams).reconcile("team-a/app")
    assert registry.deleted == []
