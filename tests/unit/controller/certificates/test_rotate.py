"""``certs rotate``: the request on the Secret, and the wait for the leader."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from controller.certificates import rotate
from controller.certificates.material import ROTATE_HANDLED, ROTATE_REQUESTED, SECRET_NAME

NOW = dt.datetime(2030, 1, 1, 12, 0, 0, 250, tzinfo=dt.UTC)


class FakeCore:
    """The Secret's annotations; a leader that answers after ``answer_after`` reads."""

    def __init__(self, *, exists: bool = True, answer_after: int | None = 0) -> None:
        self.exists = exists
        self.annotations: dict[str, str] = {}
        self.answer_after = answer_after
        self.reads = 0
        self.patches: list[tuple[Any, str | None]] = []

    def patch_namespaced_secret(self, name: str, namespace: str, body: Any, **kw: Any) -> Any:
        assert (name, namespace) == (SECRET_NAME, "ns")
        if not self.exists:
            raise ApiException(status=404, reason="Not Found")
        self.patches.append((body, kw.get("_content_type")))
        self.annotations.update(body["metadata"]["annotations"])
        return None

    def read_namespaced_secret(self, name: str, namespace: str, **kw: Any) -> Any:
        self.reads += 1
        if self.answer_after is not None and self.reads > self.answer_after:
            self.annotations[ROTATE_HANDLED] = self.annotations[ROTATE_REQUESTED]
        return SimpleNamespace(metadata=SimpleNamespace(annotations=dict(self.annotations)))


def test_the_request_is_a_merge_patch_of_one_annotation_with_the_time() -> None:
    core = FakeCore()
    value = rotate.request_rotation(core, "ns", NOW)
    assert value == "2030-01-01T12:00:00.000250Z"
    assert core.patches == [
        ({"metadata": {"annotations": {ROTATE_REQUESTED: value}}}, rotate.MERGE_PATCH)
    ]


def test_without_the_secret_the_user_is_told_why() -> None:
    with pytest.raises(rotate.RotationError, match="--manage-certificates"):
        rotate.rotate(FakeCore(exists=False), "ns", 1.0, NOW)


def test_the_command_returns_once_the_leader_took_the_request_up() -> None:
    core = FakeCore(answer_after=2)
    assert "started" in rotate.rotate(core, "ns", 30.0, NOW)
    assert core.reads == 3


def test_nobody_taking_the_request_up_is_an_error_after_the_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ticks = iter(range(100))
    never = FakeCore(answer_after=None)
    assert not rotate.wait_taken_up(
        never, "ns", "x", 5, clock=lambda: float(next(ticks)), sleep=lambda s: None
    )
    assert never.reads == 5, "it kept looking until the deadline"
    monkeypatch.setattr(rotate, "wait_taken_up", lambda *a, **kw: False)
    with pytest.raises(rotate.RotationError, match="no certificate manager took it up"):
        rotate.rotate(FakeCore(answer_after=None), "ns", 5.0, NOW)


def test_a_zero_timeout_does_not_wait() -> None:
    core = FakeCore(answer_after=None)
    assert rotate.rotate(core, "ns", 0.0, NOW).startswith("rotation requested at")
    assert core.reads == 0


def test_an_answer_to_an_older_request_does_not_count() -> None:
    core = FakeCore(answer_after=None)
    core.annotations[ROTATE_HANDLED] = "2029-01-01T00:00:00.000000Z"
    ticks = iter(range(100))
    assert not rotate.wait_taken_up(
        core,
        "ns",
        "2030-01-01T00:00:00.000000Z",
        3,
        clock=lambda: float(next(ticks)),
        sleep=lambda s: None,
    )
