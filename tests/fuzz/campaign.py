"""A body campaign: many requests, fast, over keep-alive TLS, judged one by one.

Hypothesis is thorough but costs milliseconds a body, too slow for 100,000. So a pool of
seed bodies is drawn once from the same strategies the other fuzzers use
(``tests.fuzz.bodies``), then a seeded random mutator derives every body sent from them:
as is, truncated, a byte changed, a hostile fragment spliced in, a subtree of another seed
grafted in, wrapped in deep nesting, or widened with a long list. Sender threads post them
over their own keep-alive connections; each answer is checked against the OpenAPI document
and the rules every fuzzer applies (``tests.fuzz.judge``).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.fuzz.bodies import (
    ADMISSION_PATHS,
    HUGE_NUMBERS,
    PUSH_PATH,
    shapes,
    valid_pushes,
    valid_reviews,
)
from tests.fuzz.fakes import TOKEN

SEEDS_PER_PATH: Final = 200
"""Seed bodies drawn per path; mutation multiplies them, so a few hundred are plenty."""
MUTATED_SHARE: Final = 0.6
"""Share of bodies that are mutated rather than sent as drawn."""
MAX_NESTING: Final = 3000
"""Deep enough to pass Python's default recursion limit (1,000) in json.loads."""
MAX_WIDTH: Final = 20_000
"""Elements of a widened body's list: parse cost without the size limits' help."""
REQUEST_TIMEOUT: Final = 60.0
"""Seconds for one answer: gunicorn's worker timeout (``TlsServer``), so a hung request
fails here no later than the server would kill its worker."""

# Fragments a hostile or broken client might send, spliced in anywhere.
HOSTILE: Final = (
    *HUGE_NUMBERS,
    b"NaN",
    b"-Infinity",
    b"1e999",
    b'"\\ud800"',
    b"\x00",
    b"\xff\xfe",
    b'"',
    b",",
    b"}",
    b"[" * 100,
    b'{"request": null}',
    b'"kind": "AdmissionReview"',
)
CONTENT_TYPES: Final = ("application/json", "application/json; charset=utf-8")
ODD_CONTENT_TYPES: Final = ("text/plain", "", "application/x-www-form-urlencoded")
PATHS: Final = (*ADMISSION_PATHS, PUSH_PATH)


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


def draw_seeds(per_path: int = SEEDS_PER_PATH) -> dict[str, list[bytes]]:
    """Bodies drawn from the Hypothesis strategies, ``per_path`` for each path."""
    strategies: dict[str, st.SearchStrategy[bytes]] = {
        path: shapes(valid_reviews(path)) for path in ADMISSION_PATHS
    }
    strategies[PUSH_PATH] = shapes(valid_pushes)
    seeds: dict[str, list[bytes]] = {}
    for path, strategy in strategies.items():
        drawn: list[bytes] = []

        @settings(
            max_examples=per_path,
            phases=[Phase.generate],
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(body=strategy)
        def collect(body: bytes) -> None:
            drawn.append(body)  # noqa: B023 (each path's run ends before the next starts)

        collect()
        seeds[path] = drawn
    return seeds


def _subtrees(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for child in value.values():
            yield from _subtrees(child)
    elif isinstance(value, list):
        for child in value:
            yield from _subtrees(child)


def _graft(rng: random.Random, body: bytes, donor: bytes) -> bytes:
    """``body`` with one of its subtrees replaced by one of ``donor``'s."""
    try:
        target, source = json.loads(body), json.loads(donor)
    except ValueError:
        return body + donor
    parents = [node for node in _subtrees(target) if isinstance(node, dict | list) and node]
    if not parents:
        return json.dumps(source).encode()
    parent = rng.choice(parents)
    key = rng.choice(list(parent)) if isinstance(parent, dict) else rng.randrange(len(parent))
    parent[key] = rng.choice(list(_subtrees(source)))
    return json.dumps(target).encode()


def mutate(rng: random.Random, body: bytes, donor: bytes) -> bytes:
    """One random change to ``body``; ``donor`` is another seed to graft from."""
    at = rng.randrange(len(body) + 1)
    match rng.randrange(7):
        case 0:
            return body[:at]
        case 1:
            return body[:at] + bytes([rng.randrange(256)]) + body[at + 1 :]
        case 2:
            return body[:at] + rng.choice(HOSTILE) + body[at:]
        case 3:
            return _graft(rng, body, donor)
        case 4:
            depth = rng.randrange(1, MAX_NESTING)
            return b'{"a":' * depth + body + b"}" * depth
        case 5:
            width = rng.randrange(1, MAX_WIDTH)
            return body[:-1] + b', "wide": [' + b",".join([b"{}"] * width) + b"]}"
        case _:
            return body + body


def requests_for(seeds: dict[str, list[bytes]], count: int, seed: int) -> Iterator[Request]:
    """``count`` requests, the same ones for the same ``seed``."""
    rng = random.Random(seed)
    for _ in range(count):
        path = rng.choice(PATHS)
        body = rng.choice(seeds[path])
        if rng.random() < MUTATED_SHARE:
            body = mutate(rng, body, rng.choice(seeds[rng.choice(PATHS)]))
        content_type = rng.choice(CONTENT_TYPES if rng.random() < 0.95 else ODD_CONTENT_TYPES)
        headers = {"Content-Type": content_type}
        if path == PUSH_PATH:
            token = rng.choices([TOKEN, "not-" + TOKEN, None], weights=[90, 5, 5])[0]
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
        yield Request(path, headers, body)


Check = Callable[[Request, requests.Response], list[str]]
"""Problems with one answer; none is a pass."""


@dataclass
class Tally:
    """What a campaign saw, shared by its sender threads."""

    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, status: int | None, error: str | None, problems: list[str]) -> int:
        """Count one answer (or failure to get one); returns how many so far."""
        with self.lock:
            self.sent += 1
            if status is not None:
                self.statuses[status] += 1
            if error is not None:
                self.errors[error] += 1
            self.problems.extend(problems)
            return self.sent


def run(
    url: str,
    ca_file: str,
    stream: Iterator[Request],
    check: Check,
    *,
    senders: int,
    on_progress: Callable[[int], None] = lambda sent: None,
    progress_every: int = 1,
) -> tuple[Tally, float]:
    """Send every request of ``stream`` from ``senders`` threads; the tally and seconds.

    ``on_progress`` is called after every ``progress_every`` answers, from a sender.
    """
    tally = Tally()
    source = iter(stream)
    source_lock = threading.Lock()

    def next_request() -> Request | None:
        with source_lock:
            return next(source, None)

    def sender() -> None:
        with requests.Session() as session:
            while (request := next_request()) is not None:
                try:
                    response = session.post(
                        url + request.path,
                        data=request.body,
                        headers=request.headers,
                        # Per request: requests lets REQUESTS_CA_BUNDLE override session.verify.
                        verify=ca_file,
                        timeout=REQUEST_TIMEOUT,
                    )
                except requests.RequestException as err:
                    tally.record(None, type(err).__name__, [])
                    continue
                sent = tally.record(response.status_code, None, check(request, response))
                if sent % progress_every == 0:
                    on_progress(sent)

    started = time.perf_counter()
    threads = [threading.Thread(target=sender, name=f"fuzz-sender-{i}") for i in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally, time.perf_counter() - started
