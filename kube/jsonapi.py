"""The one way the API adapters call the API server: the raw answer, decoded to a dict.

The generated client's models are slow to build and drop the fields they do not know, so
every adapter (pull secrets, certificates, ResourceQuotas, Images) asks for the raw answer
(``_preload_content=False``) and decodes its JSON, as client-go's dynamic client does.
Every call carries a timeout, and goes through the adapter's client-side token bucket
where it has one. A read of an object that does not exist is None: the one error all the
adapters answer alike; every other error is the caller's to read (``kube.apierrors``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException

from kube import apierrors
from quota.objects import Obj


class Limiter(Protocol):
    def acquire(self) -> None: ...


class NotAnObject(ValueError):
    """The answer is JSON, but not an object (a proxy's answer, never the API server's)."""


def call_json(func: Callable[..., Any], *args: Any, timeout: float, **kwargs: Any) -> Obj:
    """``func`` (a generated client method) called raw within ``timeout`` seconds."""
    response = func(*args, _preload_content=False, _request_timeout=timeout, **kwargs)
    answer = json.loads(response.data)
    if not isinstance(answer, dict):
        raise NotAnObject("the answer is not an object")
    return answer


def read_json(func: Callable[..., Any], *args: Any, timeout: float, **kwargs: Any) -> Obj | None:
    """``call_json`` for a read: None when the object does not exist."""
    try:
        return call_json(func, *args, timeout=timeout, **kwargs)
    except ApiException as err:
        if apierrors.is_not_found(err):
            return None
        raise


class JsonApi:
    """Base of an adapter: ``_call`` and ``_read`` with its default timeout and limiter."""

    def __init__(self, *, timeout: float, limiter: Limiter | None = None) -> None:
        self._timeout = timeout
        self._limiter = limiter

    def _call(
        self, func: Callable[..., Any], *args: Any, timeout: float | None = None, **kwargs: Any
    ) -> Obj:
        if self._limiter is not None:
            self._limiter.acquire()
        return call_json(func, *args, timeout=self._timeout_of(timeout), **kwargs)

    def _read(
        self, func: Callable[..., Any], *args: Any, timeout: float | None = None, **kwargs: Any
    ) -> Obj | None:
        if self._limiter is not None:
            self._limiter.acquire()
        return read_json(func, *args, timeout=self._timeout_of(timeout), **kwargs)

    def _timeout_of(self, timeout: float | None) -> float:
        """A caller's tighter bound (a deadline's remainder), else the adapter's."""
        return self._timeout if timeout is None else timeout
