"""JsonApi: every adapter call raw, bounded and rate limited; a missing object is None."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from kube.apierrors import CONFLICT, FORBIDDEN, NOT_FOUND
from kube.jsonapi import JsonApi, NotAnObject, call_json, read_json
from quota.objects import Obj
from tests.unit.apistatus import api_error

OBJECT: Obj = {"metadata": {"name": "s", "namespace": "team-a"}}


@dataclass
class Raw:
    data: bytes


class Method:
    """A generated client method: records its arguments, answers ``answer``."""

    def __init__(self, answer: object | BaseException = OBJECT) -> None:
        self.answer = answer
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Raw:
        self.calls.append((args, kwargs))
        if isinstance(self.answer, BaseException):
            raise self.answer
        return Raw(json.dumps(self.answer).encode())


class CountingLimiter:
    def __init__(self) -> None:
        self.acquired = 0

    def acquire(self) -> None:
        self.acquired += 1


class Adapter(JsonApi):
    def call(self, method: Method, timeout: float | None = None) -> Obj:
        return self._call(method, "s", "team-a", timeout=timeout, field_manager="m")

    def read(self, method: Method) -> Obj | None:
        return self._read(method, "s", "team-a")


def test_a_call_is_raw_and_bounded_by_the_adapters_timeout_unless_tighter() -> None:
    method = Method()
    adapter = Adapter(timeout=30)
    assert adapter.call(method) == OBJECT
    assert adapter.call(method, timeout=0.5) == OBJECT
    extra = {"field_manager": "m", "_preload_content": False}
    assert method.calls == [
        (("s", "team-a"), {**extra, "_request_timeout": 30}),
        (("s", "team-a"), {**extra, "_request_timeout": 0.5}),
    ]


def test_every_call_waits_for_the_limiter() -> None:
    limiter = CountingLimiter()
    adapter = Adapter(timeout=30, limiter=limiter)
    adapter.call(Method())
    adapter.read(Method(api_error(NOT_FOUND)))
    assert limiter.acquired == 2


def test_a_read_of_a_missing_object_is_none() -> None:
    assert Adapter(timeout=30).read(Method(api_error(NOT_FOUND))) is None
    assert read_json(Method(api_error(NOT_FOUND)), timeout=1) is None


@pytest.mark.parametrize("reason", [CONFLICT, FORBIDDEN])
def test_other_errors_are_the_callers_to_read(reason: str) -> None:
    with pytest.raises(ApiException):
        Adapter(timeout=30).read(Method(api_error(reason)))


def test_a_missing_object_is_an_error_where_it_is_not_a_read() -> None:
    with pytest.raises(ApiException):
        Adapter(timeout=30).call(Method(api_error(NOT_FOUND)))


@pytest.mark.parametrize("answer", [["a list"], "text", None])
def test_an_answer_that_is_not_an_object_is_refused(answer: object) -> None:
    with pytest.raises(NotAnObject):
        call_json(Method(answer), timeout=1)
