"""The read-only switch: distribution's own read-only answer, to writes only, while the
registry Config says so; not ready before the Config has been read."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

from frontdoor.readonly import READ_ONLY_MESSAGE, ReadOnlySwitch, read_only_refusal


class Config:
    """The informer's view of configs/cluster."""

    def __init__(self, obj: dict[str, Any] | None, synced: bool = True) -> None:
        self.obj = obj
        self.synced = synced

    def get(self, key: str) -> dict[str, Any] | None:
        return self.obj if key == "cluster" else None

    def has_synced(self) -> bool:
        return self.synced


def switch(obj: dict[str, Any] | None, synced: bool = True) -> ReadOnlySwitch:
    made = ReadOnlySwitch(client.ApiClient(client.Configuration()))
    made._config = Config(obj, synced)  # type: ignore[assignment]
    return made


def test_the_refusal_is_distributions_read_only_answer_with_a_message_and_retry_after() -> None:
    refusal = read_only_refusal()
    assert refusal.status == 405
    assert refusal.headers["Allow"] == "GET, HEAD"
    assert int(refusal.headers["Retry-After"]) > 0
    body = json.loads(refusal.body())
    assert body == {"errors": [{"code": "UNSUPPORTED", "message": READ_ONLY_MESSAGE}]}


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_every_write_is_refused_while_the_config_says_read_only(method: str) -> None:
    assert switch({"spec": {"readOnly": True}}).refuses(method)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_reads_go_on_while_read_only(method: str) -> None:
    assert not switch({"spec": {"readOnly": True}}).refuses(method)


@pytest.mark.parametrize(
    "config", [None, {}, {"spec": {}}, {"spec": {"readOnly": False}}, {"spec": {"readOnly": "yes"}}]
)
def test_writes_pass_unless_read_only_is_true(config: dict[str, Any] | None) -> None:
    assert not switch(config).refuses("PUT")


def test_a_worker_is_not_ready_before_it_has_read_the_config() -> None:
    assert switch(None, synced=False).not_ready() is not None
    assert switch(None, synced=True).not_ready() is None
