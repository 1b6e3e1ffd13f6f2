"""What our webhooks add to a write through the real API server: sequential creates, each
next to the same create in a namespace our webhooks exclude, taken in turn.

Arms (``--creates`` each side, default 300, the issue's count):

- ``sa``: ServiceAccount creates (mutating webhook) vs the excluded namespace;
- ``imagestream``: ImageStream creates without a quota (validating webhook) vs excluded;
- ``charged``: ImageStream creates charged by our ``alauda.io/imagestreams`` quota vs the
  same creates charged in-process by kube-apiserver's own quota admission
  (``count/imagestreams.image.alauda.io``) in an excluded namespace;
- ``burst``: the charged arm with creates in bursts of 8 at once (a pipeline creating a
  release's streams), p99 against native quota's: charges queued in one process share a
  status write, but the 8 spread over the serving processes, which still race each other;
- ``sa-vs-noop``, ``imagestream-vs-noop``: the uncharged creates of ``sa`` and
  ``imagestream`` against the same creates through a no-op webhook registered the way ours
  are (issue 21's target: p50 at most 1.1x), so the webhook call itself is on both sides;
- ``noop-sa``, ``noop-imagestream``: references, no targets: the same creates through a
  webhook that allows everything (``bench.noopwebhook``, registered the way ours are) vs
  the excluded namespace: the floor of any out-of-process Python webhook here.

The client is the official Python client over keep-alive connections, raw responses
(no model decoding), and times each create on the wall clock. The figures are the
ratios of p50 and p99 to the same-run baseline (``bench.report.alternate``), and per arm
the charges, the quota status writes they took (charges queued in one process share a
write) and how many of those failed their precondition (409), read from the webhook
replicas' metrics. ``--profile flamegraph`` (or ``raw``,
``speedscope``) records the webhook replicas with py-spy during the arms
(``bench/results/latency-webhook-*``).

Per arm of ours it also reports our handler's mean time (the replicas' admission
histogram), to tell the webhook's own time from the API server's cost of calling one.

Expected duration at the defaults: about 4 minutes on a quiet 2-core machine (start-up
of the stack about 40 s, then 4,800 measured creates plus warm-up); under load from
other work, twice that.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from kubernetes import client, config

from bench import plots, samples
from bench.report import RESULTS, Figure, Report, Target, alternate, percentile, progress
from localcluster.cluster import ControlPlane
from localcluster.metrics import metric_sum
from localcluster.ports import free_port
from localcluster.stack import CONFIGURATION_NAME, Stack
from localcluster.waiting import wait_for
from webhook import registration

NAME = "latency"
CREATES = 300
"""Creates per arm and side: the issue's sequential run."""
WARM_UP = 20
"""Creates per side before measuring: connections, caches and the API server's webhook
client warm up."""
QUOTA_HARD = "1000000"
"""Large enough that no arm ever fills a quota."""
STREAM_TAGS = 1
"""Each created ImageStream names one tag: a create, not a stream's growth, is measured."""
CHARGED_P50_RATIO = 1.15
BURST_P99_RATIO = 1.5
"""Issue 21's targets: charged p50 at most 1.15x native quota's, and p99 of 8 concurrent
charged creates at most 1.5x native quota's."""
NOOP_P50_RATIO = 1.1
"""Issue 21's target: an uncharged create's p50 at most 1.1x the same create through a
no-op webhook registered the same way (what any out-of-process webhook costs is not ours)."""
UNCHARGED_P50_RATIO = 1.25
UNCHARGED_P99_RATIO = 1.5
"""The issue's targets: uncharged p50 at most 1.25x and p99 at most 1.5x the excluded
namespace's."""
NATIVE_RESOURCE = "count/imagestreams.image.alauda.io"
OUR_RESOURCE = "alauda.io/imagestreams"
CHARGES = "registry_v2_policy_quota_charges_total"
WRITES = "registry_v2_policy_quota_status_writes_total"
"""Quota status writes (charges are batched per namespace, so fewer writes than charges)."""
HANDLER_SECONDS = "registry_v2_policy_admission_duration_seconds"
USAGE_DEADLINE = 120.0
"""Seconds for both quotas' usage to be counted (kube-controller-manager discovers the
CRD and syncs the quota; seconds on a quiet machine)."""

OURS, EXCLUDED = "bench-ours", "bench-excluded"
OURS_QUOTA, EXCLUDED_QUOTA = "bench-ours-quota", "bench-excluded-quota"
NOOP = "bench-noop"
EXCLUDED_NAMESPACES = (EXCLUDED, EXCLUDED_QUOTA, NOOP)
"""Namespaces our webhooks skip (by namespaceSelector, as ``--excluded-namespace``)."""
NOOP_CONFIGURATION = "bench-noop"


@dataclass(frozen=True)
class Arm:
    name: str
    title: str
    kind: str  # "serviceaccount" or "imagestream"
    ours: str
    baseline: str
    baseline_name: str
    p50_target: float | None
    p99_target: float | None
    endpoint: str | None  # our endpoint that answers it, or None when not ours
    clients: int = 1  # creates in flight at once (a burst), else sequential


ARMS = (
    Arm(
        "sa",
        "ServiceAccount create",
        "serviceaccount",
        OURS,
        EXCLUDED,
        "excluded namespace",
        UNCHARGED_P50_RATIO,
        UNCHARGED_P99_RATIO,
        "mutate_serviceaccounts",
    ),
    Arm(
        "imagestream",
        "ImageStream create, no quota",
        "imagestream",
        OURS,
        EXCLUDED,
        "excluded namespace",
        UNCHARGED_P50_RATIO,
        UNCHARGED_P99_RATIO,
        "validate_imagestreams",
    ),
    Arm(
        "sa-vs-noop",
        "ServiceAccount create vs no-op webhook",
        "serviceaccount",
        OURS,
        NOOP,
        "no-op webhook",
        NOOP_P50_RATIO,
        None,
        "mutate_serviceaccounts",
    ),
    Arm(
        "imagestream-vs-noop",
        "ImageStream create, no quota, vs no-op webhook",
        "imagestream",
        OURS,
        NOOP,
        "no-op webhook",
        NOOP_P50_RATIO,
        None,
        "validate_imagestreams",
    ),
    Arm(
        "charged",
        "ImageStream create, charged",
        "imagestream",
        OURS_QUOTA,
        EXCLUDED_QUOTA,
        "native quota",
        CHARGED_P50_RATIO,
        None,
        "validate_imagestreams",
    ),
    Arm(
        "burst",
        "ImageStream create, charged, bursts",
        "imagestream",
        OURS_QUOTA,
        EXCLUDED_QUOTA,
        "native quota",
        None,
        BURST_P99_RATIO,
        "validate_imagestreams",
        clients=8,
    ),
    Arm(
        "noop-sa",
        "ServiceAccount create, no-op webhook",
        "serviceaccount",
        NOOP,
        EXCLUDED,
        "excluded namespace",
        None,
        None,
        None,
    ),
    Arm(
        "noop-imagestream",
        "ImageStream create, no-op webhook",
        "imagestream",
        NOOP,
        EXCLUDED,
        "excluded namespace",
        None,
        None,
        None,
    ),
)


def excluded_selector_patch(configuration: dict[str, Any], namespaces: Sequence[str]) -> list[Any]:
    """JSON patch ops adding ``namespaces`` to every webhook's namespaceSelector exclusion
    (``kubernetes.io/metadata.name NotIn``), as ``--excluded-namespace`` registers them."""
    ops: list[Any] = []
    for i, webhook in enumerate(configuration.get("webhooks") or []):
        expressions = (webhook.get("namespaceSelector") or {}).get("matchExpressions") or []
        for j, expression in enumerate(expressions):
            if expression.get("key") == "kubernetes.io/metadata.name" and (
                expression.get("operator") == "NotIn"
            ):
                path = f"/webhooks/{i}/namespaceSelector/matchExpressions/{j}/values/-"
                ops.extend(
                    {"op": "add", "path": path, "value": ns}
                    for ns in namespaces
                    if ns not in expression.get("values", [])
                )
    return ops


def _api(stack: Stack) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(str(stack.kubeconfig), client_configuration=configuration)
    configuration.connection_pool_maxsize = max(arm.clients for arm in ARMS)  # keep-alive each
    return client.ApiClient(configuration)


def _exclude(api: client.ApiClient) -> None:
    admission = client.AdmissionregistrationV1Api(api)
    for read, patch in (
        (
            admission.read_mutating_webhook_configuration,
            admission.patch_mutating_webhook_configuration,
        ),
        (
            admission.read_validating_webhook_configuration,
            admission.patch_validating_webhook_configuration,
        ),
    ):
        current = json.loads(read(CONFIGURATION_NAME, _preload_content=False).data)
        ops = excluded_selector_patch(current, EXCLUDED_NAMESPACES)
        if ops:
            patch(CONFIGURATION_NAME, ops)


def noop_configurations(url: str, ca_bundle: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """The no-op webhook registered as ours are (``webhook.registration``: same rules,
    timeouts, reinvocation), but only for the ``NOOP`` namespace."""
    mutating, validating = registration.desired_configurations(
        name=NOOP_CONFIGURATION, ca_bundle=ca_bundle, excluded_namespaces=[], url=url
    )
    only_noop = {
        "matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [NOOP]}
        ]
    }
    for configuration in (mutating, validating):
        for webhook in configuration["webhooks"]:
            webhook["name"] = "noop-" + webhook["name"]
            webhook["namespaceSelector"] = only_noop
    return mutating, validating


def _start_noop(stack: Stack, api: client.ApiClient) -> tuple[subprocess.Popen[bytes], str]:
    """The no-op webhook on the stack's serving certificate, registered and called."""
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    certs = stack.certs_dir
    files = [str(certs / "tls.crt"), str(certs / "tls.key")]
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.noopwebhook", str(port), *files],
        cwd=Path(__file__).resolve().parent.parent,
    )
    registration.register(api, *noop_configurations(url, (certs / "ca.crt").read_bytes()))
    core = client.CoreV1Api(api)

    def called() -> bool:
        if process.poll() is not None:
            raise RuntimeError("the no-op webhook exited")
        core.create_namespaced_service_account(
            NOOP, {"metadata": {"name": "probe"}}, dry_run="All", _preload_content=False
        )
        answered = requests.get(f"{url}/count", verify=str(certs / "ca.crt"), timeout=10)
        return int(answered.text) > 0

    wait_for(called, timeout=USAGE_DEADLINE, what="the API server to call the no-op webhook")
    return process, url


def _counted(core: client.CoreV1Api, namespace: str, name: str, resource: str) -> bool:
    raw = core.read_namespaced_resource_quota(name, namespace, _preload_content=False)
    return resource in ((json.loads(raw.data).get("status") or {}).get("used") or {})


def _creator(api: client.ApiClient, kind: str, namespace: str, prefix: str) -> Callable[[], float]:
    """One create per call, a fresh name each time (``prefix``: the arm, as arms share
    baseline namespaces); returns its wall time in ms."""
    core, objects = client.CoreV1Api(api), client.CustomObjectsApi(api)
    names = itertools.count()

    def create() -> float:
        name = f"{prefix}-{next(names):05d}"
        started = time.perf_counter()
        if kind == "serviceaccount":
            core.create_namespaced_service_account(
                namespace, {"metadata": {"name": name}}, _preload_content=False
            )
        else:
            body = samples.created(
                samples.imagestream(namespace, name, tags=STREAM_TAGS, history=0, status=False)
            )
            objects.create_namespaced_custom_object(
                "image.alauda.io", "v1", namespace, "imagestreams", body, _preload_content=False
            )
        return (time.perf_counter() - started) * 1000

    return create


def _bursts(
    create: Callable[[], float], clients: int, pool: ThreadPoolExecutor, samples: list[float]
) -> Callable[[], float]:
    """``clients`` creates at once per call; each one's time goes to ``samples``, the
    burst's wall time is returned."""

    def burst() -> float:
        started = time.perf_counter()
        samples.extend(pool.map(lambda _: create(), range(clients)))
        return (time.perf_counter() - started) * 1000

    return burst


def _metrics_pages(stack: Stack) -> list[str]:
    return [requests.get(url, timeout=10).text for url in stack.webhook_metrics_urls]


PROFILE_FORMATS = {"flamegraph": "svg", "raw": "txt", "speedscope": "json"}
"""py-spy's output formats and their file suffixes; ``raw`` is collapsed stacks, one line
per stack with its sample count, for shares of time by grep."""


def _profilers(stack: Stack, tag: str, form: str) -> list[subprocess.Popen[bytes]]:
    """py-spy on every webhook replica (master and worker), until stopped with SIGINT."""
    py_spy = Path(sys.executable).with_name("py-spy")
    started = []
    for n, process in enumerate(stack.webhooks, start=1):
        out = RESULTS / f"{NAME}-webhook-{n}-{tag}.{PROFILE_FORMATS[form]}"
        command = [str(py_spy), "record", "--subprocesses", "-r", "200", "-f", form, "-o", str(out)]
        started.append(
            subprocess.Popen(
                [*command, "--pid", str(process.pid)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    return started


def _stop_profilers(profilers: list[subprocess.Popen[bytes]]) -> None:
    for profiler in profilers:
        profiler.send_signal(signal.SIGINT)
    for profiler in profilers:
        try:
            profiler.wait(timeout=60)
        except subprocess.TimeoutExpired:
            profiler.kill()
            profiler.wait()


def _run_arm(
    report: Report, stack: Stack, api: client.ApiClient, arm: Arm, creates: int, warm_up: int
) -> None:
    ours = _creator(api, arm.kind, arm.ours, arm.name)
    theirs = _creator(api, arm.kind, arm.baseline, arm.name)
    mine: list[float] = []
    base: list[float] = []
    with ThreadPoolExecutor(arm.clients) as pool:
        if arm.clients > 1:  # each create's own time, not the burst's
            ours = _bursts(ours, arm.clients, pool, mine)
            theirs = _bursts(theirs, arm.clients, pool, base)
        alternate(max(1, warm_up // arm.clients), ours, theirs)
        mine.clear()
        base.clear()
        before = _metrics_pages(stack)
        progress(f"{arm.name}: {creates} creates each in {arm.ours} and {arm.baseline}")
        sequential = alternate(max(1, creates // arm.clients), ours, theirs)
        after = _metrics_pages(stack)
    if arm.clients == 1:
        mine, base = sequential
    report.series[f"{arm.name}/ours"] = mine
    report.series[f"{arm.name}/{arm.baseline_name}"] = base
    for p, bound in ((50, arm.p50_target), (99, arm.p99_target)):
        report.add(
            Figure(
                NAME,
                f"{arm.title} p{p}",
                percentile(mine, p),
                "ms",
                percentile(base, p),
                arm.baseline_name,
                Target("ratio", "<=", bound) if bound is not None else None,
            )
        )

    def delta(name: str, **labels: str) -> float:
        return metric_sum(after, name, **labels) - metric_sum(before, name, **labels)

    charged = delta(CHARGES, result="charged")
    writes = sum(delta(WRITES, result=result) for result in ("written", "conflict", "failed"))
    conflicts = delta(WRITES, result="conflict")
    if arm.endpoint is not None:
        count, total = (
            metric_sum(after, f"{HANDLER_SECONDS}_{part}", endpoint=arm.endpoint)
            - metric_sum(before, f"{HANDLER_SECONDS}_{part}", endpoint=arm.endpoint)
            for part in ("count", "sum")
        )
        if count:
            report.add(Figure(NAME, f"{arm.title}: our handler (mean)", 1000 * total / count, "ms"))
    if charged or writes:
        report.add(Figure(NAME, f"{arm.title}: charges", charged, "charges"))
        report.add(Figure(NAME, f"{arm.title}: quota writes", writes, "writes"))
        report.add(Figure(NAME, f"{arm.title}: of them 409", conflicts, "writes"))
    report.notes.append(
        f"{arm.name}: {charged:.0f} charges in {writes:.0f} quota status writes, "
        f"{conflicts:.0f} of them conflicts (409)"
    )
    plots.latency_cdf(
        f"{NAME}-{arm.name}",
        f"{arm.title}: ours vs {arm.baseline_name}",
        {"ours": mine, arm.baseline_name: base},
    )


def main(argv: list[str]) -> list[Figure]:
    parser = argparse.ArgumentParser(prog="python -m bench latency", description=__doc__)
    parser.add_argument("--creates", type=int, default=CREATES, help="per arm and side")
    parser.add_argument("--warm-up", type=int, default=WARM_UP, help="per arm and side")
    parser.add_argument(
        "--arms", default=",".join(a.name for a in ARMS), help="comma-separated subset"
    )
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILE_FORMATS),
        help="py-spy the webhook replicas during the arms, in this format",
    )
    args = parser.parse_args(argv)
    chosen = [a for a in ARMS if a.name in args.arms.split(",")]
    report = Report(NAME)
    progress("starting the local stack (control plane, 2 webhook replicas, 2 controllers)")
    stack = Stack(
        ControlPlane(),
        webhook_args=[f"--excluded-namespace={ns}" for ns in EXCLUDED_NAMESPACES],
        controller_args=[f"--excluded-namespace={ns}" for ns in EXCLUDED_NAMESPACES],
    )
    stack.start()
    profilers: list[subprocess.Popen[bytes]] = []
    noop: subprocess.Popen[bytes] | None = None
    try:
        with _api(stack) as api:
            _exclude(api)
            core = client.CoreV1Api(api)
            for ns in (OURS, EXCLUDED, OURS_QUOTA, EXCLUDED_QUOTA, NOOP):
                core.create_namespace({"metadata": {"name": ns}}, _preload_content=False)
            core.create_namespaced_resource_quota(
                OURS_QUOTA,
                samples.resource_quota("streams", {OUR_RESOURCE: QUOTA_HARD}),
                _preload_content=False,
            )
            core.create_namespaced_resource_quota(
                EXCLUDED_QUOTA,
                samples.resource_quota("streams", {NATIVE_RESOURCE: QUOTA_HARD}),
                _preload_content=False,
            )
            progress("waiting for both quotas' usage to be counted")
            wait_for(
                lambda: (
                    _counted(core, OURS_QUOTA, "streams", OUR_RESOURCE)
                    and _counted(core, EXCLUDED_QUOTA, "streams", NATIVE_RESOURCE)
                ),
                timeout=USAGE_DEADLINE,
                what="both quotas' usage to be counted",
            )
            if any(arm.endpoint is None or arm.baseline == NOOP for arm in chosen):
                progress("starting the no-op webhook")
                noop, _ = _start_noop(stack, api)
            if args.profile:
                RESULTS.mkdir(parents=True, exist_ok=True)
                profilers = _profilers(stack, "+".join(a.name for a in chosen), args.profile)
            for arm in chosen:
                _run_arm(report, stack, api, arm, args.creates, args.warm_up)
    finally:
        _stop_profilers(profilers)
        if noop is not None:
            noop.terminate()
            noop.wait(timeout=30)
        stack.stop()
    report.notes.append(f"client: kubernetes Python client, pid {os.getpid()}, sequential")
    path = report.write()
    progress(f"wrote {path}")
    return report.figures
