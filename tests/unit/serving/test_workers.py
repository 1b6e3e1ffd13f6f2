"""Several gunicorn workers per server: one metrics page summing them all, and no worker
taking connections before its caches have synced."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from localcluster.binaries import REPO_ROOT
from localcluster.ports import free_port
from localcluster.processes import ManagedProcess
from localcluster.waiting import wait_for
from serving import workermetrics
from serving.app import create_app
from serving.tlsserver import HandshakeThenDeferWorker
from tests.fuzz.server import ServerProcess
from tests.unit.serving.workers_process import ENDPOINT, WORKERS

STARTUP_SECONDS = 60.0
"""Two workers fork and import the app in a second or two; a shared 2-core machine may be
much slower."""
BATCH = 16
"""Requests sent at once, each on a connection of its own, so both workers get some."""


@dataclass
class Workers:
    port: int
    metrics_port: int
    control: Path
    process: ManagedProcess

    def pids(self) -> list[int]:
        return ServerProcess("", "", self.process.pid, self.process.log_path).worker_pids()

    def release(self, name: str) -> None:
        (self.control / f"ready-{name}").touch()

    def get(self, path: str) -> requests.Response:
        return requests.get(
            f"https://127.0.0.1:{self.port}{path}",
            verify=str(self.control / "certs" / "ca.crt"),
            timeout=10,
        )

    def answered_by(self, count: int) -> Counter[int]:
        """Which worker answered each of ``count`` counted requests sent at once."""
        with ThreadPoolExecutor(BATCH) as pool:
            responses = list(pool.map(lambda _: self.get("/count"), range(count)))
        assert all(r.status_code == 200 for r in responses)
        return Counter(r.json()["pid"] for r in responses)

    def counted(self) -> float:
        page = requests.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(page)
            for sample in family.samples
            if sample.name == "registry_v2_policy_admission_requests_total"
            and sample.labels.get("endpoint") == ENDPOINT
        )


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    control = tmp_path / "control"
    control.mkdir()
    port, metrics_port = free_port(), free_port()
    process = ManagedProcess(
        "workers",
        [
            sys.executable,
            "-m",
            "tests.unit.serving.workers_process",
            str(port),
            str(metrics_port),
            str(control),
        ],
        tmp_path / "logs",
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        cwd=REPO_ROOT,
    )
    served = Workers(port, metrics_port, control, process)

    def forked() -> bool:
        if not process.running():
            raise RuntimeError("the server exited:\n" + process.log_tail())
        return len(served.pids()) == WORKERS

    try:
        wait_for(forked, timeout=STARTUP_SECONDS, interval=0.1, what="both workers")
        yield served
    finally:
        process.stop()


def test_the_masters_page_sums_every_workers_counts_even_a_gone_ones(workers: Workers) -> None:
    workers.release("all")
    answered: Counter[int] = Counter()

    def both_answered() -> bool:
        answered.update(workers.answered_by(BATCH))
        return len(answered) == WORKERS

    wait_for(both_answered, timeout=STARTUP_SECONDS, interval=0, what="both workers to answer")
    assert workers.counted() == answered.total()

    # A worker that exits (max-requests, a crash) leaves its counts, and its way out through
    # serve's with-block leaves the directory to the master: no counter goes back.
    gone = next(iter(answered))
    os.kill(gone, signal.SIGTERM)
    wait_for(
        lambda: gone not in workers.pids() and len(workers.pids()) == WORKERS,
        timeout=STARTUP_SECONDS,
        interval=0.1,
        what="gunicorn to replace the worker",
    )
    assert workers.counted() == answered.total()
    answered.update(workers.answered_by(BATCH))
    assert workers.counted() == answered.total()


def test_a_worker_takes_no_connection_before_its_caches_have_synced(workers: Workers) -> None:
    """With two workers, the kubelet's probe and the API server's calls go to whichever
    takes the connection: a worker still syncing would answer 503 to some probes (the pod
    flaps) and judge some reviews without its caches. It takes none until synced."""
    first, second = workers.pids()
    workers.release(str(first))
    wait_for(
        lambda: workers.get("/readyz").status_code == 200,
        timeout=STARTUP_SECONDS,
        interval=0.1,
        what="the synced worker to answer",
    )
    assert workers.answered_by(4 * BATCH) == Counter({first: 4 * BATCH})
    assert {workers.get("/readyz").status_code for _ in range(BATCH)} == {200}

    workers.release(str(second))
    wait_for(
        lambda: second in workers.answered_by(BATCH),
        timeout=STARTUP_SECONDS,
        interval=0,
        what="the second worker to take connections once synced",
    )


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    """A ready worker freezes the heap (``freeze_start_up_heap``): here that is pytest's,
    given back to the collector after each test."""
    yield
    gc.unfreeze()


def waiting_worker(ready: list[bool], seconds: float, alive: bool = True) -> Any:
    notified: list[None] = []
    app = create_app([], readiness=[lambda: None if ready and ready.pop() else "not synced"])
    return SimpleNamespace(
        wsgi=app,
        alive=alive,
        ready_wait_seconds=seconds,
        notify=lambda: notified.append(None),
        notified=notified,
    )


def test_a_worker_waiting_for_its_caches_tells_the_master_it_is_alive() -> None:
    worker = waiting_worker([True, False, False], seconds=60)
    HandshakeThenDeferWorker._wait_until_ready(worker)
    assert len(worker.notified) == 2


def test_a_worker_whose_caches_never_sync_takes_connections_after_the_bound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    worker = waiting_worker([], seconds=0.2)
    HandshakeThenDeferWorker._wait_until_ready(worker)
    assert "worker not ready after 0.2 s (not synced); taking connections anyway" in caplog.text


def test_a_ready_worker_freezes_its_start_up_heap_out_of_the_collectors_walks() -> None:
    """Full collections walk every tracked object: the caches' objects, frozen, are no
    longer walked in the middle of a review."""
    worker = waiting_worker([True], seconds=60)
    assert gc.get_freeze_count() == 0
    HandshakeThenDeferWorker._wait_until_ready(worker)
    assert gc.get_freeze_count() > 0


def test_a_stopping_worker_stops_waiting() -> None:
    worker = waiting_worker([], seconds=60, alive=False)
    HandshakeThenDeferWorker._wait_until_ready(worker)
    assert worker.notified == []


def test_serve_names_the_metrics_directory_before_prometheus_client_is_imported() -> None:
    """prometheus_client picks its value class once, at import: imported before the
    variable is set, every worker would count in its own memory and the master show zeros."""
    code = "import sys, cli.main; sys.exit('prometheus_client' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT).returncode == 0
    with pytest.raises(RuntimeError, match="imported before"), workermetrics.shared_directory():
        pass


def test_a_stop_signalled_to_every_process_drains_each_worker_once(workers: Workers) -> None:
    """A stop sent to the whole process group (a supervisor, ``kill -- -PGID``) reaches
    each worker twice, directly and forwarded by the master: the second must find the
    listener already handed over, not crash."""
    workers.release("all")
    kept_alive = requests.Session()  # holds the workers in their drain a while
    for _ in range(BATCH):
        kept_alive.get(
            f"https://127.0.0.1:{workers.port}/count",
            verify=str(workers.control / "certs" / "ca.crt"),
            timeout=10,
        )
    os.killpg(workers.process.pid, signal.SIGTERM)
    wait_for(
        lambda: not workers.process.running(),
        timeout=STARTUP_SECONDS,
        interval=0.1,
        what="the server to stop",
    )
    log = workers.process.log_path.read_text()
    assert "Exception" not in log and "has no attribute" not in log, log
    assert workers.process.returncode == 0
    kept_alive.close()
