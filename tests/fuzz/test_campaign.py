"""A stream of fuzzed bodies against the real server over TLS: no 5xx, no traceback, and
the server's memory stays flat.

``make test`` sends a few hundred bodies; ``FUZZ_BODIES=100000`` is the long run (about
5 minutes on 2 cores). The figures (bodies, statuses, the worker's RSS before, during and
after, time) are printed at the end of the pytest run. ``FUZZ_SEED`` picks another stream.
"""

from __future__ import annotations

import json
import os
from typing import Final

import requests

from bench.machine import describe
from tests.fuzz.campaign import Request, draw_seeds, requests_for, run
from tests.fuzz.judge import Judge
from tests.fuzz.server import WORKERS, ServerProcess, rss_bytes

BODIES: Final = int(os.environ.get("FUZZ_BODIES", "300"))
"""Bodies in ``make test``: enough to pass through every mutation several times."""
SEED: Final = int(os.environ.get("FUZZ_SEED", "0"))
SENDERS: Final = 4
"""Concurrent keep-alive connections: enough to keep the server's threads busy on 2 cores
shared with the client, few enough that client threads do not starve each other."""
RSS_CHECKPOINTS: Final = 10
"""RSS is read before the run and after each tenth of it."""
MIB: Final = 1024 * 1024
RSS_GROWTH_LIMIT: Final = 16 * MIB
"""How much the worker may grow after the first tenth of a run. That tenth warms it up
(about 16 MiB over the first 10,000 bodies of the long run: imports, caches, the allocator's
arenas after the widest bodies); after it, the long run measured +4 MiB over 90,000
bodies, while a leak of 200 bytes a request would be +17 MiB."""
SHOWN_PROBLEMS: Final = 20


def test_a_stream_of_fuzzed_bodies_is_answered_without_5xx_traceback_or_growth(
    fuzz_server: ServerProcess, fuzz_report: list[str]
) -> None:
    judge = Judge(fuzz_server.log_path)
    seeds = draw_seeds()
    workers = fuzz_server.worker_pids()
    assert len(workers) == WORKERS, workers
    worker = workers[0]
    rss = [rss_bytes(worker)]

    def checkpoint(sent: int) -> None:
        rss.append(rss_bytes(worker))

    def problems(request: Request, response: requests.Response) -> list[str]:
        return judge.problems("POST", request.path, lambda: json.loads(request.body), response)

    tally, seconds = run(
        fuzz_server.url,
        fuzz_server.ca_file,
        requests_for(seeds, BODIES, SEED),
        problems,
        senders=SENDERS,
        on_progress=checkpoint,
        progress_every=max(1, BODIES // RSS_CHECKPOINTS),
    )
    rss_after = rss_bytes(worker)
    rss_warm = rss[1] if len(rss) > 1 else rss[0]
    statuses = ", ".join(f"{status}: {n}" for status, n in sorted(tally.statuses.items()))
    fuzz_report.extend(
        [
            f"fuzz campaign: {tally.sent} bodies in {seconds:.1f} s "
            f"({tally.sent / seconds:.0f}/s), {SENDERS} keep-alive TLS connections, "
            f"seed {SEED}",
            f"  statuses: {statuses}",
            f"  connection errors: {dict(tally.errors) or 'none'}",
            f"  problems: {len(tally.problems)}",
            f"  server worker RSS: before {rss[0] / MIB:.1f} MiB, after {rss_after / MIB:.1f} "
            f"MiB ({(rss_after - rss[0]) / MIB:+.1f} MiB; "
            f"{(rss_after - rss_warm) / MIB:+.1f} MiB after the first tenth)",
            "  RSS after each tenth (MiB): " + " ".join(f"{value / MIB:.1f}" for value in rss[1:]),
            f"  machine: {describe()}",
        ]
    )
    assert tally.sent == BODIES
    assert not tally.errors, tally.errors
    assert not tally.problems, "\n".join(
        [f"{len(tally.problems)} problems, the first:", *tally.problems[:SHOWN_PROBLEMS]]
    )
    assert fuzz_server.worker_pids() == [worker], "the worker was replaced during the run"
    assert rss_after - rss_warm <= RSS_GROWTH_LIMIT, "the server's memory grows"
