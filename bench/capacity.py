"""Capacity: AdmissionReviews and PushReviews straight to our server over TLS with
keep-alive (the vegeta load generator, 16 connections), next to the bare server stack
(``bench.bare_app``) under its best gunicorn setting on this machine, measured in turn in
the same run.

Our server is one ``serve`` process (one pod) with production-like flags, its caches fed
by a real local API server (``localcluster``); admission reviews carry the API server's
webhook client certificate and are shaped as kube-apiserver sends them (managedFields
included); PushReviews carry a token whose review is cached. For each endpoint: requests/s
at saturation, p50/p99 at fixed offered rates (500 and 1,000 requests/s), and CPU seconds
per 1,000 reviews of the server's whole process tree.

First the bare app runs under each ``--bare-settings`` entry (saturation on the mutating
path) and the best is kept: that is the baseline. Comparing against the bare app under our
own, weaker setting would flatter us.

Defaults take about 15 minutes on 2 cores (control plane start-up 1 min, bare matrix 6
settings x 2 rounds x 10 s, then 3 endpoints x 3 loads x 3 rounds x 2 servers x 10 s);
``--seconds 3 --rounds 1 --bare-settings plain:2x8,plain:1x64`` takes about 3.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from bench import loadgen, plots, samples
from bench.report import RESULTS, Figure, Report, Target, alternate, progress
from localcluster.binaries import REPO_ROOT
from localcluster.cluster import ControlPlane
from localcluster.ports import free_port
from localcluster.processes import ManagedProcess
from localcluster.stack import Stack
from localcluster.waiting import wait_for

NAME = "capacity"
NS = "bench-capacity"
TAGS = 10
HISTORY = 3
"""The reviewed stream: 10 tags with 3 images each."""
LAYERS = 5
"""Layers of the pushed image."""

CAPACITY_RATIO_TARGET = 0.8
"""Issue 21's target (issue 11 asked 0.7): at least 0.8 x the best bare Flask stack's
requests/s."""
P99_TARGET_MS = 5.0
"""The issue's target: p99 under 5 ms at 1,000 requests/s offered."""
RATES = (500, 1000)
"""Fixed offered rates of the issue (requests/s)."""
DEFAULT_SECONDS = 10.0
"""Per attack: long enough for 10,000 samples at 1,000/s, so p99 rests on 100 of them."""
DEFAULT_ROUNDS = 3
DEFAULT_BARE_SETTINGS = "plain:1x64,plain:2x8,plain:2x4,plain:4x4,ours:1x64,ours:2x8"
"""gunicorn gthread workers x threads: ours today (1x64), the issue's best (2x8) and its
neighbours; ``ours`` is the same app under our worker class and TLS socket."""
SERVER_FLAGS = ("--log-level=INFO",)
"""Production-like: the manifests' log level (each review logs its line)."""
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


# --- bodies, as the API server and the registry send them ---------------------------------


@dataclass(frozen=True)
class Endpoint:
    label: str
    path: str
    body: bytes
    needs_token: bool = False


def imagestream() -> dict[str, Any]:
    """The stream the reviews update, as the API server stores it."""
    return samples.imagestream(NS, "app", tags=TAGS, history=HISTORY)


def endpoints() -> list[Endpoint]:
    stream = imagestream()
    updated = json.loads(json.dumps(stream))
    updated["metadata"]["labels"] = {"team": "a"}
    sa = samples.serviceaccount(NS, "builder")
    # A tag push of an image the stream has not seen.
    pushed = TAGS * HISTORY + 1
    return [
        Endpoint(
            "mutate SA",
            "/mutate/serviceaccounts",
            samples.admission_review("", "ServiceAccount", "serviceaccounts", "CREATE", sa),
        ),
        Endpoint(
            "validate IS",
            "/validate/imagestreams",
            samples.admission_review(
                "image.alauda.io", "ImageStream", "imagestreams", "UPDATE", updated, stream
            ),
        ),
        Endpoint(
            "PushReview",
            "/v1/pushreviews",
            samples.push_review(NS, "v1", pushed, layers=LAYERS),
            needs_token=True,
        ),
    ]


# --- processes -----------------------------------------------------------------------------


def process_tree(root: int) -> list[int]:
    """``root`` and every process descended from it (gunicorn's master and workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def cpu_seconds(root: int) -> float:
    """utime + stime of ``root``'s process tree, in seconds (``/proc/PID/stat``)."""
    ticks = 0
    for pid in process_tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / TICKS_PER_SECOND


def memory_mib(pid: int) -> tuple[float, float]:
    """Resident (``VmRSS``) and private (``Private_*`` of ``smaps_rollup``: what this
    process alone holds, its own caches among it) memory of one process, in MiB."""
    fields: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name, _, rest = line.partition(":")
            if rest.strip().endswith("kB"):
                fields[name] = int(rest.split()[0])
    except OSError:
        return 0.0, 0.0
    private = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return fields.get("Rss", 0) / 1024, private / 1024


@dataclass(frozen=True)
class BareSetting:
    server: str
    workers: int
    threads: int

    @classmethod
    def parse(cls, text: str) -> BareSetting:
        """``plain:2x8`` -> stock gunicorn gthread, 2 workers x 8 threads."""
        server, _, shape = text.partition(":")
        workers, _, threads = shape.partition("x")
        if server not in ("plain", "ours") or not workers.isdigit() or not threads.isdigit():
            raise argparse.ArgumentTypeError(f"expected plain|ours:WORKERSxTHREADS, got {text!r}")
        return cls(server, int(workers), int(threads))

    def __str__(self) -> str:
        return f"{self.server}:{self.workers}x{self.threads}"


@contextmanager
def bare_server(stack: Stack, setting: BareSetting, log_dir: Path) -> Iterator[tuple[str, int]]:
    """The bare app on a port of its own, with our server's certificate files."""
    port = free_port()
    process = ManagedProcess(
        f"bare-{setting.server}-{setting.workers}x{setting.threads}",
        [
            sys.executable,
            "-m",
            "bench.bare_app",
            f"--bind=127.0.0.1:{port}",
            f"--cert={stack.certs_dir / 'tls.crt'}",
            f"--key={stack.certs_dir / 'tls.key'}",
            f"--client-ca={stack.client_ca_file}",
            f"--workers={setting.workers}",
            f"--threads={setting.threads}",
            f"--server={setting.server}",
        ],
        log_dir,
        cwd=REPO_ROOT,
    )
    try:
        ca = str(stack.certs_dir / "ca.crt")

        def serving() -> bool:
            if not process.running():
                raise RuntimeError("bare app exited:\n" + process.log_tail())
            return requests.post(
                f"https://127.0.0.1:{port}/v1/pushreviews", json={}, verify=ca, timeout=5
            ).ok

        wait_for(serving, timeout=30, what=f"the bare app ({setting}) to serve")
        # Every worker forked and serving: gunicorn starts them one after the other.
        wait_for(
            lambda: len(process_tree(process.pid)) >= 1 + setting.workers,
            timeout=30,
            what="every bare worker",
        )
        yield f"https://127.0.0.1:{port}", process.pid
    finally:
        process.stop()


# --- the measurements ----------------------------------------------------------------------


@dataclass
class Server:
    """One side of a comparison: where it listens and whose CPU it burns."""

    name: str
    url: str
    pid: int


def measure(
    server: Server, endpoint: Endpoint, tls: loadgen.Tls, token: str, *, rate: int, seconds: float
) -> tuple[loadgen.Result, float]:
    """One attack; returns its result and the server's CPU seconds per 1,000 answers."""
    headers = {"Authorization": f"Bearer {token}"} if endpoint.needs_token else {}
    target = loadgen.Target(server.url + endpoint.path, endpoint.body, headers)
    before = cpu_seconds(server.pid)
    result = loadgen.attack(target, tls, rate=rate, seconds=seconds)
    spent = cpu_seconds(server.pid) - before
    if result.success < 1.0:
        raise RuntimeError(
            f"{server.name} {endpoint.path}: {result.status_codes} {result.errors[:3]}"
        )
    return result, 1000 * spent / max(1, result.requests)


def pick_bare(
    stack: Stack,
    settings: list[BareSetting],
    tls: loadgen.Tls,
    endpoint: Endpoint,
    *,
    rounds: int,
    seconds: float,
    report: Report,
) -> BareSetting:
    """The bare setting with the most requests/s at saturation, each round in turn
    (order reversed every other round, so drift falls on all alike)."""
    samples: dict[BareSetting, list[float]] = {s: [] for s in settings}
    for i in range(rounds):
        for setting in settings if i % 2 == 0 else list(reversed(settings)):
            with bare_server(stack, setting, stack.cp.log_dir) as (url, pid):
                result, _ = measure(
                    Server(str(setting), url, pid), endpoint, tls, "", rate=0, seconds=seconds
                )
            samples[setting].append(result.throughput)
            progress(f"bare {setting}: {result.throughput:,.0f} requests/s")
    medians = {s: sorted(v)[len(v) // 2] for s, v in samples.items()}
    for setting, values in samples.items():
        report.series[f"bare {setting} requests/s"] = values
    plots.bars(
        f"{NAME}-bare-settings",
        "Bare Flask + gunicorn over TLS, saturation (vegeta, 16 connections)",
        {str(s): v for s, v in medians.items()},
        unit="requests/s",
    )
    return max(medians, key=lambda s: medians[s])


def _prepare(stack: Stack) -> str:
    """Namespace, policies, the stream the reviews update, and a PushReview caller's token."""
    kubectl = stack.kubectl
    kubectl("create", "namespace", NS)
    objects: list[dict[str, Any]] = [
        samples.limit_range("limits"),
        samples.resource_quota("streams"),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "pushreviews"},
            "rules": [
                {
                    "apiGroups": ["image.alauda.io"],
                    "resources": ["pushreviews"],
                    "verbs": ["create"],
                }
            ],
        },
    ]
    for obj in objects:
        kubectl("apply", "-n", NS, "-f", "-", input=json.dumps(obj))
    wait_for(
        lambda: bool(
            kubectl(
                "get",
                "resourcequota",
                "streams",
                "-n",
                NS,
                "-o",
                r"jsonpath={.status.used.alauda\.io/imagestreams}",
            )
        ),
        timeout=60,
        what="the quota's usage to be counted",
    )
    kubectl("apply", "-f", "-", input=json.dumps(samples.created(imagestream())))
    kubectl("create", "serviceaccount", "registry", "-n", NS)
    kubectl(
        "create",
        "rolebinding",
        "registry",
        "-n",
        NS,
        "--role=pushreviews",
        f"--serviceaccount={NS}:registry",
    )
    return kubectl("create", "token", "registry", "-n", NS).strip()


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


Sample = tuple[loadgen.Result, float]
"""One attack's result and the server's CPU seconds per 1,000 answers."""
PICKS: dict[str, Callable[[Sample], float]] = {
    "requests/s": lambda s: s[0].throughput,
    "p50 ms": lambda s: s[0].p50_ms,
    "p99 ms": lambda s: s[0].p99_ms,
    "CPU s per 1,000": lambda s: s[1],
}


def compare(
    ours: Server,
    bare: Server,
    endpoint: Endpoint,
    tls: loadgen.Tls,
    token: str,
    *,
    rounds: int,
    seconds: float,
    report: Report,
) -> None:
    """Saturation and fixed rates, ours and the bare app in turn; figures by medians."""
    for rate in (0, *RATES):
        load = "saturation" if rate == 0 else f"{rate}/s"
        results: dict[str, list[Sample]] = {ours.name: [], bare.name: []}

        def run(
            server: Server,
            rate: int = rate,
            load: str = load,
            into: dict[str, list[Sample]] = results,
        ) -> float:
            result, cpu = measure(server, endpoint, tls, token, rate=rate, seconds=seconds)
            into[server.name].append((result, cpu))
            progress(
                f"{endpoint.label} {load} {server.name}: {result.throughput:,.0f}/s "
                f"p50 {result.p50_ms:.2f} ms p99 {result.p99_ms:.2f} ms, "
                f"{cpu:.2f} CPU s per 1,000"
            )
            return result.throughput

        alternate(rounds, lambda: run(ours), lambda: run(bare))
        mine, theirs = results[ours.name], results[bare.name]
        for key, pick in PICKS.items():
            report.series[f"{endpoint.label} {load} {key} ours"] = [pick(r) for r in mine]
            report.series[f"{endpoint.label} {load} {key} bare"] = [pick(r) for r in theirs]
        for name, unit, key, target in _figures_at(rate):
            report.add(
                Figure(
                    NAME,
                    f"{endpoint.label} {name}",
                    _median([PICKS[key](r) for r in mine]),
                    unit,
                    _median([PICKS[key](r) for r in theirs]),
                    f"bare {bare.name}",
                    target,
                )
            )


def _figures_at(rate: int) -> list[tuple[str, str, str, Target | None]]:
    """(figure name, unit, PICKS key, target) reported for one offered rate (0: saturation)."""
    if rate == 0:
        return [
            ("saturation", "req/s", "requests/s", Target("ratio", ">=", CAPACITY_RATIO_TARGET)),
            ("CPU per 1,000", "CPU s", "CPU s per 1,000", None),
        ]
    p99_target = Target("value", "<", P99_TARGET_MS) if rate == max(RATES) else None
    return [
        (f"p50 @{rate}/s", "ms", "p50 ms", None),
        (f"p99 @{rate}/s", "ms", "p99 ms", p99_target),
    ]


@contextmanager
def profiling(pid: int, path: Path, seconds: float) -> Iterator[None]:
    """py-spy on ``pid`` and its workers while the body runs, as collapsed stacks.

    Only the thread holding the GIL is sampled (``--gil``): a worker is GIL-bound, so these
    are shares of the time it can serve. Without it, threads waiting to take the GIL back
    after a send look busy in ``SSLSocket.send`` (a third of the samples) though they burn
    nothing."""
    spy = Path(sys.executable).parent / "py-spy"
    process = subprocess.Popen(
        [
            str(spy),
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--nonblocking",
            "--gil",
            "--format",
            "raw",
            "--rate",
            "250",
            "--duration",
            str(int(seconds) + 1),
            "--output",
            str(path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        try:
            process.wait(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)
            process.wait(10)


WSGI_FRAME = "wsgi_app (flask/app.py"
"""The frame of Flask's WSGI entry: below it is the app's time, above it the server's."""


def wsgi_share(collapsed: str) -> tuple[float, int]:
    """Share of py-spy's (non-idle) samples inside the WSGI app, and the sample count."""
    inside = total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        total += int(count)
        if WSGI_FRAME in stack:
            inside += int(count)
    return (inside / total if total else 0.0), total


def main(argv: list[str]) -> list[Figure]:
    parser = argparse.ArgumentParser(prog="python -m bench capacity", description=__doc__)
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="per attack")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument(
        "--bare-settings",
        type=lambda text: [BareSetting.parse(s) for s in text.split(",")],
        default=[BareSetting.parse(s) for s in DEFAULT_BARE_SETTINGS.split(",")],
        help=f"server:WORKERSxTHREADS,... (default {DEFAULT_BARE_SETTINGS})",
    )
    parser.add_argument("--bare-rounds", type=int, default=2)
    parser.add_argument(
        "--endpoints",
        default="all",
        help="comma-separated labels' first words: mutate,validate,PushReview",
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy our server at saturation, per endpoint"
    )
    parser.add_argument(
        "--server-arg", action="append", default=[], help="extra flag for our serve command"
    )
    args = parser.parse_args(argv)
    report = Report(NAME)
    chosen = [
        e
        for e in endpoints()
        if args.endpoints == "all" or e.label.split()[0] in args.endpoints.split(",")
    ]
    progress("starting the control plane and one server replica")
    stack = Stack(
        ControlPlane(),
        webhook_replicas=1,
        controller_replicas=1,
        webhook_args=[*SERVER_FLAGS, *args.server_arg],
    )
    stack.start()
    try:
        token = _prepare(stack)
        cert, key = stack.api_server_client_cert
        tls = loadgen.Tls(stack.certs_dir / "ca.crt", cert, key)
        webhook = stack.webhook
        assert webhook is not None
        ours = Server("ours", stack.webhook_url, webhook.pid)
        for endpoint in chosen:  # warm: caches, connections, the token's review
            measure(ours, endpoint, tls, token, rate=100, seconds=1)
        progress(f"bare settings: {', '.join(map(str, args.bare_settings))}")
        best = pick_bare(
            stack,
            args.bare_settings,
            tls,
            chosen[0],
            rounds=args.bare_rounds,
            seconds=args.seconds,
            report=report,
        )
        report.notes.append(f"best bare setting on this machine, this run: {best}")
        progress(f"best bare setting: {best}")
        with bare_server(stack, best, stack.cp.log_dir) as (url, pid):
            bare = Server(str(best), url, pid)
            for endpoint in chosen:
                compare(
                    ours,
                    bare,
                    endpoint,
                    tls,
                    token,
                    rounds=args.rounds,
                    seconds=args.seconds,
                    report=report,
                )
        # What each worker's own caches cost (a second worker holds a second copy).
        memory = ", ".join(
            "{}: RSS {:.0f} MiB, private {:.0f} MiB".format(pid, *memory_mib(pid))
            for pid in process_tree(webhook.pid)
        )
        report.notes.append(f"ours, memory of the master and each worker after the run: {memory}")
        progress(report.notes[-1])
        if args.profile:
            for endpoint in chosen:
                path = profile_path(endpoint)
                with profiling(webhook.pid, path, args.seconds):
                    measure(ours, endpoint, tls, token, rate=0, seconds=args.seconds)
                share, samples = wsgi_share(path.read_text())
                note = (
                    f"profile {endpoint.label}: {100 * share:.0f}% of {samples} samples inside "
                    f"the WSGI app, {100 * (1 - share):.0f}% outside ({path.name})"
                )
                report.notes.append(note)
                progress(note)
    finally:
        stack.stop()
    _plot(report)
    path = report.write()
    progress(f"wrote {path}")
    return report.figures


def profile_path(endpoint: Endpoint) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    return RESULTS / f"{NAME}-profile-{endpoint.path.strip('/').replace('/', '-')}.txt"


def _plot(report: Report) -> None:
    saturation = {
        f"{f.name.removesuffix(' saturation')} {who}": v
        for f in report.figures
        if f.name.endswith("saturation") and f.baseline is not None
        for who, v in (("ours", f.value), (f"bare {f.baseline_name}", f.baseline))
    }
    plots.bars(
        f"{NAME}-saturation",
        "Requests/s at saturation (16 connections)",
        saturation,
        unit="requests/s",
    )
    p99 = {
        f"{f.name} {who}": v
        for f in report.figures
        if " p99 @" in f.name and f.baseline is not None
        for who, v in (("ours", f.value), ("bare", f.baseline))
    }
    plots.bars(f"{NAME}-p99", "p99 latency at fixed offered rates", p99, unit="ms")
