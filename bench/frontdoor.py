"""What the registry's front door costs a real client: blob throughput and manifest PUT
latency through ``frontdoor`` vs straight to the CNCF registry behind it, same run.

- *Throughput*: ``--rounds`` rounds of a push (``crane push`` of a one-layer image whose
  layer is ``--blob-mib`` MiB of fresh random bytes each push, as the registry skips a blob
  it holds) and a pull (``crane blob REF@DIGEST`` to /dev/null), through the front door
  and direct, taken in turn (``bench.report.alternate``). crane is a Go client, so the
  client is not the bottleneck; the whole client process is timed and nothing is
  subtracted (the push includes its config blob and manifest PUT, judged and recorded by
  the front door). Figures: MB/s and the ratio to direct, target >= 0.8x (issue 12).
- *Manifest PUT latency*: ``--manifests`` sequential PUTs of a small image's manifest
  (its blobs already uploaded), each under a new tag, over one keep-alive connection
  (``requests.Session``), through the front door vs direct, in distinct repositories of
  a namespace with no limits. Through the front door each PUT is judged (in-process,
  from caches), PUTs the manifest to the registry by digest, writes the tag into the
  ImageStream's status through the API server and our admission webhook (from the stream
  its last write returned), creates the Image (409: it exists) and PUTs the manifest by
  tag: the stream grows by a tag each time, so the p50 of the first and last quarters is
  reported too. Target: p50 at most ``PUT_RATIO`` x direct (issue 21). The front door's
  API requests per PUT are counted from the control plane's audit log, by verb and
  resource. ``--exempt-own-status-writes`` measures the PUT with our webhook skipping
  the front door's own status writes (a match condition added after start-up).
- *CPU*: seconds per GiB moved of the front door (master and workers, from ``/proc``),
  and of client + registry + front door against client + registry direct: on a machine
  whose cores are busy, the throughput ratio follows the inverse of that CPU ratio.

The direct path trusts the registry's own CA with no credentials (the loopback registry
has no auth); the front door path logs in with a ``registry-editor`` ServiceAccount's
registry-audience token. ``--profile`` records the front door with py-spy during each
phase (``bench/results/frontdoor-{push,pull,manifests}.txt``, collapsed stacks; CPU for
the blobs, wall clock for the manifests) and reports the shares of its main steps; the
timings of a profiled run carry py-spy's sampling cost.

Expected duration at the defaults: about 2 minutes on a 2-core machine (stack start-up
10-40 s, 8 rounds of 4 x 256 MiB transfers plus writing the layouts about 60 s, 420
manifest PUTs about 20 s); under load from other work, twice that. It needs about 4.5 GiB
of disk for the registry's storage, in the control plane's temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path

import requests

from bench.report import RESULTS, Figure, Report, Target, alternate, percentile, progress
from localcluster.cluster import ControlPlane
from localcluster.crane import COMMAND_TIMEOUT_SECONDS, Crane
from localcluster.frontdoor import FRONTDOOR_ACCOUNT, LocalFrontDoor
from localcluster.ocilayout import OCI_MANIFEST, random_layers, write_image
from localcluster.processes import ManagedProcess
from localcluster.stack import CONFIGURATION_NAME, SERVICE_NAMESPACE, Stack

NAME = "frontdoor"
BLOB_MIB = 256
"""Size of the blob pushed and pulled: large enough that a transfer takes seconds, so
per-request costs (TLS handshake, token review, manifest PUT) are a small part of it."""
ROUNDS = 8
"""Push and pull rounds per side: each round moves 4 blobs in a few seconds. With 5, the
ratios of two runs on the shared 2-core machine differed by up to 0.3; more rounds
narrow the median at some 5 s each."""
MANIFESTS = 200
"""Sequential manifest PUTs per side."""
PUT_RATIO = 3.0
"""Issue 21's target: a manifest PUT through the front door at most 3x direct (p50)."""
FRONTDOOR_USER = f"system:serviceaccount:{SERVICE_NAMESPACE}:{FRONTDOOR_ACCOUNT}"
"""Who the front door is to the API server in the stack: its requests are counted in the
control plane's audit log (``ControlPlane.audit_log`` records our ServiceAccounts')."""
IMAGESTREAMS_WEBHOOK = "imagestreams.webhook.image.alauda.io"
"""The validating webhook ``--exempt-own-status-writes`` adds its match condition to
(``webhook.registration``)."""
WARM_UP = 10
"""Manifest PUTs per side before measuring: connections, caches and token reviews warm."""
THROUGHPUT_RATIO = 0.8
"""The issue's target: through the front door at least 0.8x the direct throughput."""
MB = 1_000_000
"""MB/s in decimal megabytes, as transfer rates are usually quoted."""
GIB = 2**30
NAMESPACE = "bench-frontdoor"
ACCOUNT = "bench-pusher"
ROLE = "registry-editor"
AUDIENCE = "image-registry.alauda.io"
"""The registry audience (``--token-audiences``' default), which pull secrets carry."""
TOKEN_DURATION = "1h"
"""Outlives the run; ``kubectl create token``'s own default."""
SMALL_LAYER_BYTES = 1000
"""The manifest benchmark's image: one small layer, so only the PUT itself is measured."""
PROFILE_STEPS = {
    "push": {
        "read the client's body (gunicorn, TLS)": "request_body",
        "send upstream (TLS)": "HTTPConnection.send",
        "manifest PUT": "ManifestPuts.put",
    },
    "pull": {
        "read upstream (TLS)": "_stream",
        "write to the client (TLS)": "Response.write",
    },
    "manifests": {
        "authenticate": "Access.user",
        "authorize": "Access.allowed",
        "parse and check blobs": "ManifestPuts._push",
        "judge": "PushJudge.judge",
        "storage charge": "PushJudge.charge_storage",
        "ImageStream (read live)": "ImageRecords.stream",
        "Image create": "ImageRecords.save_image",
        "registry PUTs": "Upstream.request",
        "tag (status write, our webhook inside)": "ImageRecords.tag",
    },
}
"""Per phase, the front door's steps whose share of samples ``--profile`` reports: the
frame (py-spy's ``Class.method``) on the stacks that do it."""
HANDLING = "ThreadWorker.handle_request"
"""The frame under every request a worker thread serves: shares are of those samples, not
of the idle pool threads and cache watches beside them."""
WALL_CLOCK_PHASES = {"manifests"}
"""Phases profiled on the wall clock (``py-spy --idle``: waits on the API server count);
the blob phases are profiled on CPU, as the idle threads of the pool would swamp them."""


def mb_per_second(size: int, seconds: float) -> float:
    return size / MB / seconds if seconds > 0 else float("nan")


def cpu_seconds(stat: str, ticks_per_second: int) -> float:
    """User plus system CPU time of one process from its ``/proc/PID/stat`` line (proc(5):
    fields 14 and 15, counted after the command name, which may hold spaces and parens)."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / ticks_per_second


def parent_of(stat: str) -> int:
    """The parent pid in a ``/proc/PID/stat`` line (field 4)."""
    return int(stat.rsplit(")", 1)[1].split()[1])


def descendants(root: int, parents: Mapping[int, int]) -> set[int]:
    """``root`` and every process under it, from a pid -> parent pid map."""
    tree = {root}
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return tree


def _stats() -> dict[int, str]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = (entry / "stat").read_text()
            except OSError:  # it exited meanwhile
                continue
    return found


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds used so far by ``root`` and its live descendants (gunicorn's master and
    workers, which live as long as the run)."""
    stats = _stats()
    tree = descendants(root, {pid: parent_of(stat) for pid, stat in stats.items()})
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(cpu_seconds(stats[pid], ticks) for pid in tree if pid in stats)


def children_cpu_seconds() -> float:
    """CPU seconds of this process's waited-for children (each crane run, once it ends)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """CPU seconds of the client (crane, a child of ours) and of named process trees."""

    def __init__(self, trees: Mapping[str, int | None]) -> None:
        self.trees = {name: pid for name, pid in trees.items() if pid is not None}

    def read(self) -> dict[str, float]:
        readings = {"client": children_cpu_seconds()}
        readings.update({name: tree_cpu_seconds(pid) for name, pid in self.trees.items()})
        return readings

    def since(self, before: Mapping[str, float]) -> dict[str, float]:
        now = self.read()
        return {part: now[part] - before[part] for part in before}


def _pid(process: ManagedProcess | None) -> int | None:
    return process.pid if process is not None else None


def collapsed_shares(
    lines: Iterable[str], steps: Mapping[str, str], within: str
) -> dict[str, float]:
    """Of the samples in py-spy's collapsed format (``frame;frame;... COUNT``, frames
    ``name (file:line)``) whose stack passes through ``within``, the fraction that also
    pass through each step's frame."""
    total = 0
    counts = dict.fromkeys(steps, 0)
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        names = {frame.split(" (", 1)[0] for frame in stack.split(";")}
        if within not in names:
            continue
        total += int(count)
        for step, function in steps.items():
            if function in names:
                counts[step] += int(count)
    return {step: n / total if total else 0.0 for step, n in counts.items()}


def _session(ca_file: Path) -> requests.Session:
    """A keep-alive session trusting exactly ``ca_file``: ``trust_env`` off, else
    ``REQUESTS_CA_BUNDLE`` in the environment would replace the session's CA."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(ca_file)
    return session


class Clients:
    """The two ways to the same registry: crane and a requests session for each."""

    def __init__(self, door: LocalFrontDoor, token: str, home: Path) -> None:
        self.door = Crane(door.ca_file, home / "door")
        self.door.write_credentials(door.host, "serviceaccount", token)
        self.direct = Crane(door.registry.ca_file, home / "direct")
        self.door_host = door.host
        self.direct_host = door.registry.host
        self.door_session = _session(door.ca_file)
        self.door_session.headers["Authorization"] = f"Bearer {token}"
        self.direct_session = _session(door.registry.ca_file)

    def close(self) -> None:
        self.door_session.close()
        self.direct_session.close()


def _timed(run: Callable[[], subprocess.CompletedProcess[str]], what: str) -> float:
    started = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed: {result.stderr.strip()[-2000:]}")
    return seconds


def _blob_to_null(crane: Crane, ref: str) -> subprocess.CompletedProcess[str]:
    """``crane blob REF`` with its output thrown away: the bytes cross the wire and the
    client, and nothing else (``Crane.run`` would hold them as text)."""
    return subprocess.run(
        [str(crane.binary), "blob", ref],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=crane.env(),
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )


class Throughput:
    """Push and pull rounds of one side; remembers the last blob it pushed, to pull."""

    def __init__(self, crane: Crane, host: str, repository: str, work: Path, blob: int) -> None:
        self.crane = crane
        self.host = host
        self.repository = repository
        self.work = work
        self.blob = blob
        self.pushed: list[str] = []

    def push(self) -> float:
        directory = self.work / f"{self.repository.replace('/', '-')}-{len(self.pushed)}"
        # Fresh bytes from the kernel: the registry would skip a blob it holds, and
        # random_layers' seeded generator stops at 256 MiB (2**31 bits).
        image = write_image(directory, [os.urandom(self.blob)])
        ref = f"{self.host}/{self.repository}:r{len(self.pushed)}"
        try:
            seconds = _timed(lambda: self.crane.push(directory, ref), f"crane push {ref}")
        finally:
            shutil.rmtree(directory)
        self.pushed.append(image.layers[0].digest)
        return mb_per_second(self.blob, seconds)

    def pull(self, repository: str, digest: str) -> float:
        ref = f"{self.host}/{repository}@{digest}"
        return mb_per_second(
            self.blob, _timed(lambda: _blob_to_null(self.crane, ref), f"crane blob {ref}")
        )


def _editor_token(stack: Stack) -> str:
    stack.kubectl("create", "namespace", NAMESPACE)
    stack.kubectl("create", "serviceaccount", ACCOUNT, "-n", NAMESPACE)
    stack.kubectl(
        "create", "rolebinding", ACCOUNT, f"--clusterrole={ROLE}",
        f"--serviceaccount={NAMESPACE}:{ACCOUNT}", "-n", NAMESPACE,
    )  # fmt: skip
    return stack.kubectl(
        "create", "token", ACCOUNT, "-n", NAMESPACE,
        f"--audience={AUDIENCE}", f"--duration={TOKEN_DURATION}",
    ).strip()  # fmt: skip


class Profiler:
    """py-spy on the front door's master and workers, one phase at a time (``--profile``)."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.running: subprocess.Popen[bytes] | None = None
        self.output: Path | None = None

    def start(self, phase: str) -> None:
        if self.pid is None:
            return
        RESULTS.mkdir(parents=True, exist_ok=True)
        self.output = RESULTS / f"{NAME}-{phase}.txt"
        py_spy = Path(sys.executable).with_name("py-spy")
        command = [str(py_spy), "record", "--subprocesses", "-r", "200", "-f", "raw"]
        if phase in WALL_CLOCK_PHASES:
            command.append("--idle")
        self.running = subprocess.Popen(
            [*command, "-o", str(self.output), "--pid", str(self.pid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self, report: Report, phase: str) -> None:
        if self.running is None or self.output is None:
            return
        self.running.send_signal(signal.SIGINT)
        try:
            self.running.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.running.kill()
            self.running.wait()
        self.running = None
        if not self.output.exists():
            report.notes.append(f"{phase}: py-spy wrote no profile")
            return
        with self.output.open() as lines:
            shares = collapsed_shares(lines, PROFILE_STEPS[phase], HANDLING)
        described = ", ".join(f"{step} {share:.0%}" for step, share in shares.items())
        clock = "wall clock" if phase in WALL_CLOCK_PHASES else "CPU"
        report.notes.append(f"{phase} profile ({clock}, share of requests' samples): {described}")
        progress(report.notes[-1])


def _throughput(
    report: Report, stack: Stack, clients: Clients, rounds: int, blob: int, work: Path,
    profiler: Profiler,
) -> None:  # fmt: skip
    door = Throughput(clients.door, clients.door_host, f"{NAMESPACE}/door-blobs", work, blob)
    direct = Throughput(
        clients.direct, clients.direct_host, f"{NAMESPACE}/direct-blobs", work, blob
    )
    assert stack.frontdoor is not None
    meter = CpuMeter(
        {
            "front door": _pid(stack.frontdoor.process),
            "registry": _pid(stack.frontdoor.registry.process),
        }
    )
    cpu: dict[tuple[str, str], dict[str, float]] = {}

    def measured(phase: str, side: str, fn: Callable[[], float]) -> Callable[[], float]:
        def run() -> float:
            before = meter.read()
            rate = fn()
            spent = cpu.setdefault((phase, side), {})
            for part, seconds in meter.since(before).items():
                spent[part] = spent.get(part, 0.0) + seconds
            return rate

        return run

    progress(f"push: {rounds} rounds of {blob / 2**20:.0f} MiB through the front door and direct")
    profiler.start("push")
    pushes = alternate(
        rounds, measured("push", "door", door.push), measured("push", "direct", direct.push)
    )
    profiler.stop(report, "push")
    # Both sides pull the same blob (pushed direct, so in the door's namespace as well),
    # from the same file in the registry's storage.
    digest = direct.pushed[-1]
    progress(f"pull: {rounds} rounds of {digest[:19]}... through the front door and direct")
    profiler.start("pull")
    pulls = alternate(
        rounds,
        measured("pull", "door", lambda: door.pull(direct.repository, digest)),
        measured("pull", "direct", lambda: direct.pull(direct.repository, digest)),
    )
    profiler.stop(report, "pull")
    for phase, (ours, theirs) in (("push", pushes), ("pull", pulls)):
        report.series[f"{phase}/frontdoor"] = ours
        report.series[f"{phase}/direct"] = theirs
        report.add(
            Figure(
                NAME,
                f"blob {phase} throughput (median)",
                percentile(ours, 50),
                "MB/s",
                percentile(theirs, 50),
                "direct to the registry",
                Target("ratio", ">=", THROUGHPUT_RATIO),
            )
        )
        moved = rounds * blob / GIB
        ours_cpu, theirs_cpu = cpu[(phase, "door")], cpu[(phase, "direct")]
        report.add(
            Figure(NAME, f"front door CPU per GiB ({phase})", ours_cpu["front door"] / moved, "s")
        )
        report.add(
            Figure(
                NAME,
                f"CPU per GiB, client + registry + front door ({phase})",
                sum(ours_cpu.values()) / moved,
                "s",
                sum(theirs_cpu.values()) / moved,
                "direct: client + registry",
            )
        )
        report.notes.append(
            f"{phase} CPU s per GiB: through the front door "
            + ", ".join(f"{part} {seconds / moved:.2f}" for part, seconds in ours_cpu.items())
            + "; direct "
            + ", ".join(f"{part} {seconds / moved:.2f}" for part, seconds in theirs_cpu.items())
        )


def api_requests(lines: Iterable[str], username: str) -> dict[str, int]:
    """Requests ``username`` made, from audit events (JSON lines), by ``verb resource``:
    each counted once, at ``ResponseComplete``; watches (the caches' long requests, no
    round trip of a PUT) are left out."""
    counts: dict[str, int] = {}
    for line in lines:
        event = json.loads(line)
        if event.get("stage") != "ResponseComplete" or event.get("verb") == "watch":
            continue
        if event.get("user", {}).get("username") != username:
            continue
        ref = event.get("objectRef") or {}
        resource = ref.get("resource", event.get("requestURI", "?"))
        if ref.get("subresource"):
            resource += f"/{ref['subresource']}"
        kind = f"{event['verb']} {resource}"
        counts[kind] = counts.get(kind, 0) + 1
    return counts


class AuditWindow:
    """The audit log's events written between ``start`` and ``read``."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.offset = 0

    def start(self) -> None:
        self.offset = self.log.stat().st_size if self.log.exists() else 0

    def read(self) -> list[str]:
        with self.log.open("rb") as events:
            events.seek(self.offset)
            return [line.decode() for line in events.read().splitlines() if line.strip()]


def exempt_own_status_writes(stack: Stack) -> None:
    """``--exempt-own-status-writes``: a match condition on our imagestreams webhook that
    skips the front door's own status writes, to measure the PUT without that review
    (issue 21 asks whose registration lever it is; this only measures it)."""
    configuration = json.loads(
        stack.kubectl("get", "validatingwebhookconfiguration", CONFIGURATION_NAME, "-o", "json")
    )
    hooks = configuration["webhooks"]
    (index,) = [i for i, hook in enumerate(hooks) if hook["name"] == IMAGESTREAMS_WEBHOOK]
    condition = {
        "name": "not-the-front-doors-own-status-write",
        # A request of no subresource has no such key: has() first, or the expression
        # errs and the failurePolicy (Fail) refuses every create.
        "expression": f"!(has(request.subResource) && request.subResource == 'status' && "
        f"request.userInfo.username == '{FRONTDOOR_USER}')",
    }
    conditions = [*hooks[index].get("matchConditions", []), condition]
    patch = [{"op": "add", "path": f"/webhooks/{index}/matchConditions", "value": conditions}]
    stack.kubectl(
        "patch", "validatingwebhookconfiguration", CONFIGURATION_NAME,
        "--type=json", "-p", json.dumps(patch),
    )  # fmt: skip


def _manifest_putter(
    session: requests.Session, base: str, repository: str, body: bytes
) -> Callable[[], float]:
    """One manifest PUT per call under a fresh tag; its wall time in ms."""
    tags = iter(range(1_000_000))
    url = f"{base}/v2/{repository}/manifests"
    headers = {"Content-Type": OCI_MANIFEST}

    def put() -> float:
        tag = f"t{next(tags):05d}"
        started = time.perf_counter()
        response = session.put(f"{url}/{tag}", data=body, headers=headers, timeout=60)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 201:
            raise RuntimeError(f"PUT {repository}:{tag}: {response.status_code} {response.text}")
        return elapsed

    return put


def _manifests(
    report: Report, stack: Stack, clients: Clients, count: int, warm_up: int, work: Path,
    profiler: Profiler,
) -> None:  # fmt: skip
    assert stack.frontdoor is not None
    directory = work / "small"
    image = write_image(directory, random_layers([SMALL_LAYER_BYTES], seed=time.time_ns()))
    body = (directory / "blobs" / "sha256" / image.digest.removeprefix("sha256:")).read_bytes()
    door_repo, direct_repo = f"{NAMESPACE}/door-manifests", f"{NAMESPACE}/direct-manifests"
    for crane, host, repository in (
        (clients.door, clients.door_host, door_repo),
        (clients.direct, clients.direct_host, direct_repo),
    ):
        _timed(partial(crane.push, directory, f"{host}/{repository}:seed"), "seeding the blobs")
    ours = _manifest_putter(clients.door_session, stack.frontdoor.url, door_repo, body)
    theirs = _manifest_putter(
        clients.direct_session, stack.frontdoor.registry.url, direct_repo, body
    )
    alternate(warm_up, ours, theirs)
    progress(f"manifests: {count} sequential PUTs each through the front door and direct")
    audit = AuditWindow(stack.cp.audit_log)
    audit.start()
    profiler.start("manifests")
    mine, base = alternate(count, ours, theirs)
    profiler.stop(report, "manifests")
    requests_made = api_requests(audit.read(), FRONTDOOR_USER)
    report.add(
        Figure(NAME, "API requests per manifest PUT", sum(requests_made.values()) / count, "")
    )
    report.notes.append(
        "API requests per manifest PUT (front door, audit log): "
        + (", ".join(f"{k} {n / count:.2f}" for k, n in sorted(requests_made.items())) or "none")
    )
    progress(report.notes[-1])
    report.series["manifest-put/frontdoor"] = mine
    report.series["manifest-put/direct"] = base
    for p in (50, 99):
        report.add(
            Figure(
                NAME,
                f"manifest PUT p{p}",
                percentile(mine, p),
                "ms",
                percentile(base, p),
                "direct to the registry",
                Target("ratio", "<=", PUT_RATIO) if p == 50 else None,
            )
        )
    quarter = max(1, count // 4)
    for label, part in (("first", slice(None, quarter)), ("last", slice(-quarter, None))):
        report.add(
            Figure(
                NAME,
                f"manifest PUT p50, {label} {quarter} tags of the stream",
                percentile(mine[part], 50),
                "ms",
                percentile(base[part], 50),
                "direct to the registry",
            )
        )


def main(argv: Sequence[str]) -> list[Figure]:
    parser = argparse.ArgumentParser(prog="python -m bench frontdoor", description=__doc__)
    parser.add_argument("--blob-mib", type=int, default=BLOB_MIB, help="size of the blob")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="push and pull rounds")
    parser.add_argument("--manifests", type=int, default=MANIFESTS, help="PUTs per side")
    parser.add_argument("--warm-up", type=int, default=WARM_UP, help="manifest PUTs per side")
    parser.add_argument("--phases", default="throughput,manifests", help="comma-separated subset")
    parser.add_argument(
        "--frontdoor-arg", action="append", default=[], help="passed to frontdoor (repeatable)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the front door during each phase"
    )
    parser.add_argument(
        "--exempt-own-status-writes",
        action="store_true",
        help="register our imagestreams webhook with a match condition skipping the front "
        "door's own status writes (a measurement of that lever, not the shipped registration)",
    )
    args = parser.parse_args(list(argv))
    phases = args.phases.split(",")
    report = Report(NAME)
    progress("starting the local stack (control plane, webhooks, registry, front door)")
    stack = Stack(
        ControlPlane(),
        as_service_accounts=True,
        with_frontdoor=True,
        frontdoor_args=args.frontdoor_arg,
    )
    stack.start()
    if args.exempt_own_status_writes:
        exempt_own_status_writes(stack)
    work = Path(tempfile.mkdtemp(prefix="bench-frontdoor-"))
    try:
        assert stack.frontdoor is not None
        clients = Clients(stack.frontdoor, _editor_token(stack), work)
        process = stack.frontdoor.process
        profiler = Profiler(process.pid if args.profile and process is not None else None)
        try:
            if "throughput" in phases:
                blob = args.blob_mib * 2**20
                _throughput(report, stack, clients, args.rounds, blob, work, profiler)
            if "manifests" in phases:
                _manifests(report, stack, clients, args.manifests, args.warm_up, work, profiler)
        finally:
            clients.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        stack.stop()
    report.notes.append(
        f"clients: crane (Go) for blobs, requests.Session for manifests; "
        f"front door args: {args.frontdoor_arg or 'defaults'}"
        + (
            "; our webhook skips the front door's status writes"
            if args.exempt_own_status_writes
            else ""
        )
    )
    path = report.write()
    progress(f"wrote {path}")
    return report.figures
