"""The plain-HTTP /healthz and /readyz of the controller, from pluggable checks."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from kube import health


class Informer:
    def __init__(self, name: str, synced: bool) -> None:
        self.name = name
        self.synced = synced

    def has_synced(self) -> bool:
        return self.synced


def test_ready_once_every_informer_has_listed() -> None:
    informers = [Informer("a", True), Informer("b", False), Informer("c", False)]
    check = health.informers_synced(informers)
    assert check() == "caches not synced: b, c"
    informers[1].synced = informers[2].synced = True
    assert check() is None


def test_failing_checks_are_collected_and_a_crashing_one_is_a_reason() -> None:
    def boom() -> str | None:
        raise RuntimeError("token=abc must not show")

    assert health.failing([lambda: None, lambda: "a", boom, lambda: "b"]) == [
        "a",
        "check boom failed: RuntimeError",
        "b",
    ]


class Probes:
    def __init__(self) -> None:
        self.live: str | None = None
        self.ready: str | None = "caches not synced: x"


@pytest.fixture
def probes() -> Iterator[tuple[Probes, str]]:
    state = Probes()
    listener = health.serve_probes(
        "127.0.0.1:0", liveness=[lambda: state.live], readiness=[lambda: state.ready]
    )
    assert listener is not None
    try:
        yield state, f"http://127.0.0.1:{listener.address[1]}"
    finally:
        listener.close()


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_healthz_and_readyz_answer_from_their_checks(probes: tuple[Probes, str]) -> None:
    state, base = probes
    assert get(base + "/healthz") == (200, {"status": "ok"})
    assert get(base + "/readyz") == (
        503,
        {"status": "not ready", "reasons": ["caches not synced: x"]},
    )
    state.ready = None
    state.live = "pull-secrets: a reconcile has run for 301s"
    assert get(base + "/readyz") == (200, {"status": "ok"})
    assert get(base + "/healthz") == (
        503,
        {"status": "unhealthy", "reasons": ["pull-secrets: a reconcile has run for 301s"]},
    )


def test_other_paths_are_a_json_404(probes: tuple[Probes, str]) -> None:
    _, base = probes
    assert get(base + "/metrics") == (404, {"error": "not found", "code": 404})
    assert get(base + "/healthz/../x")[0] == 404


def test_zero_turns_the_probes_off() -> None:
    assert health.serve_probes("0", liveness=[], readiness=[]) is None
