"""Hostile bodies against the real server: its worker's memory stays flat.

JSON costs far more to hold as Python objects than as bytes (an 8 MiB ``[{},{},...]`` is
some 200 MiB of dicts), so a few such bodies at once used to OOM-kill a 512Mi pod. Here
a stream of them, several at a time, goes to the served app while /proc tells how much
memory its worker ever had resident.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from serving.httpjson import LARGE_BODY_SLOTS
from tests.fuzz.fakes import TOKEN
from tests.unit.serving.served import Served, serve
from webhook.admission.review import REVIEW_LIMITS
from webhook.admission.routes import DEFAULT_MAX_BODY_BYTES
from webhook.pushreview.review import MAX_BODY_BYTES as PUSH_MAX_BODY_BYTES
from webhook.pushreview.routes import PATH as PUSH_PATH

BODIES = int(os.environ.get("HOSTILE_BODIES", "50"))
AT_ONCE = 24
"""More hostile requests in flight than slots for large bodies, fewer than threads."""
ANSWER_DEADLINE = 60.0
"""For one body to be answered, retries after 503 included (the server's own waits are a
few seconds; a shared 2-core machine is slow)."""
BYTES_PER_VALUE = 128
"""The most memory a parsed JSON value takes besides its string's text, with margin over
the 100 bytes measured for ``{"a":0}`` (a one-key dict and its value)."""
COPIES_PER_BODY = 4
"""A large body is held at most as its chunks and their join while read, plus its text
(``str``), plus one spare copy for the allocator's rounding and the reading buffers."""
HEADROOM_MIB = 16
"""For everything else in flight: small requests, TLS and thread buffers."""
MIB = 1024 * 1024
JSON = {"Content-Type": "application/json"}
PUSH = {**JSON, "Authorization": f"Bearer {TOKEN}"}


@dataclass(frozen=True)
class Hostile:
    path: str
    body: bytes
    headers: dict[str, str]
    status: int
    """What it must finally be answered: 400 naming a limit, or 200 for one within them."""


def _filled(prefix: bytes, item: bytes, suffix: bytes, size: int) -> bytes:
    """``prefix item,item,...,item suffix`` of about ``size`` bytes."""
    count = (size - len(prefix) - len(suffix)) // (len(item) + 1)
    return prefix + b",".join([item] * count) + suffix


def _around_review_object() -> tuple[bytes, bytes]:
    """A well-formed AdmissionReview, split where its request.object goes."""
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "kind": {"group": "image.alauda.io", "version": "v1", "kind": "ImageStream"},
            "resource": {"group": "image.alauda.io", "version": "v1", "resource": "imagestreams"},
            "operation": "CREATE",
            "namespace": "team-b",
            "name": "app",
            "object": None,
        },
    }
    before, after = json.dumps(review).encode().split(b"null")
    return before, after


def shapes() -> list[Hostile]:
    """The most costly shapes per byte we measured, most filling their endpoint's cap."""
    cap = DEFAULT_MAX_BODY_BYTES - 1024
    before, after = _around_review_object()
    junk = before + b'{"metadata":{"name":"app"},"junk":['
    end = b"]}" + after
    # Two values per item ({"a":0} is a dict and a number), and the envelope's few.
    within = (REVIEW_LIMITS.max_values - 100) // 2 * 8
    return [
        # Empty objects: ~25 bytes of memory per byte of body.
        Hostile("/validate/imagestreams", _filled(b"[", b"{}", b"]", cap), JSON, 400),
        # A well-formed review carrying junk: it passes every check but the cost.
        Hostile("/validate/imagestreams", _filled(junk, b'{"a":0}', end, cap), JSON, 400),
        # Short strings: a str object each.
        Hostile("/mutate/serviceaccounts", _filled(b"[", b'"ab"', b"]", cap), JSON, 400),
        Hostile(
            PUSH_PATH,
            _filled(
                b'{"apiVersion":"image.alauda.io/v1","kind":"PushReview","spec":{"layers":[',
                b"{}",
                b"]}}",
                PUSH_MAX_BODY_BYTES - 1024,
            ),
            PUSH,
            400,
        ),
        # The same junk within the limits: parsed, handled, answered.
        Hostile("/validate/imagestreams", _filled(junk, b'{"a":0}', end, within), JSON, 200),
    ]


def answer(served: Served, hostile: Hostile) -> tuple[int, str]:
    """The final status and body, after retrying 503s as their Retry-After says (as the
    API server does)."""
    deadline = time.monotonic() + ANSWER_DEADLINE
    while True:
        response = served.post(hostile.path, hostile.body, hostile.headers, timeout=ANSWER_DEADLINE)
        if response.status_code != 503 or time.monotonic() > deadline:
            return response.status_code, response.text[:200]
        time.sleep(float(response.headers["Retry-After"]))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("served")) as served:
        yield served


def test_a_stream_of_hostile_bodies_leaves_the_worker_memory_flat(served: Served) -> None:
    kinds = shapes()
    stream = [kinds[index % len(kinds)] for index in range(BODIES)]
    # Warm up: the first requests import and cache what every later one uses.
    for hostile in kinds:
        served.post(hostile.path, hostile.body[:200], hostile.headers, timeout=ANSWER_DEADLINE)
    before = served.worker_memory_kib("VmRSS")

    with ThreadPoolExecutor(AT_ONCE) as pool:
        answers = list(pool.map(lambda hostile: answer(served, hostile), stream))

    peak = served.worker_memory_kib("VmHWM")
    after = served.worker_memory_kib("VmRSS")
    for hostile, (status, text) in zip(stream, answers, strict=True):
        assert status == hostile.status, (hostile.path, text)
        assert status == 200 or "more than" in text, text
    # Large bodies are held only in their slots: each at most its copies and its parse.
    per_body = COPIES_PER_BODY * DEFAULT_MAX_BODY_BYTES + BYTES_PER_VALUE * REVIEW_LIMITS.max_values
    bound = LARGE_BODY_SLOTS * per_body + HEADROOM_MIB * MIB
    growth = (peak - before) * 1024
    assert growth < bound, f"grew {growth / MIB:.0f} MiB (bound {bound / MIB:.0f} MiB)"
    assert (after - before) * 1024 < bound, f"kept {(after - before) / 1024:.0f} MiB"
