"""How much of a cluster's write traffic never reaches our server, and what a skipped
write costs: a realistic mix of ImageStream and ServiceAccount writes through the real
API server, with ``make dev``'s stack (``localcluster.stack``).

The mix (``MIX``, per round): controllers and GitOps tools annotating and labelling
streams and accounts, another controller writing a stream's status beside the tags, the
registry (front door) recording a push in ``status.tags``, a tag added to ``spec``, and
creates. Each write is made, in turn, in three namespaces:

- ours: our webhooks registered as shipped (``webhook.registration``: matchConditions
  and namespace selector);
- excluded: exempt from our webhooks by label (``EXEMPT_LABEL``) and excluded from the
  controller: no webhook at all, the floor;
- no-op: a webhook that allows everything (``bench.noopwebhook``) registered with our
  rules but without matchConditions: what every write would cost if it were sent.

Figures: the share of the mix's writes in our namespace that never reached our server
(from our admission metrics: answers counted over the writes made; anything else that
wrote there, such as the pull-secret reconciler, would only lower it), and p50/p99 of
the skipped writes against the excluded namespace and against the no-op webhook.

About a minute and a half at the defaults on a quiet 2-core machine (the stack's start-up
is most of it).
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from kubernetes import client, config

from bench import plots, samples
from bench.report import Figure, Report, percentile, progress
from localcluster.cluster import ControlPlane
from localcluster.metrics import metric_sum
from localcluster.ports import free_port
from localcluster.stack import Stack
from localcluster.waiting import wait_for
from webhook import registration

NAME = "writemix"
ROUNDS = 20
"""Rounds of the mix per namespace: 360 writes each, enough for a p50 and a rough p99."""
OBJECTS = 10
"""Streams and accounts made per namespace before the run, that the updates cycle over."""
START_DEADLINE = 120.0
"""Seconds for the API server to call the no-op webhook once registered (seconds on a
quiet machine)."""

OURS, EXCLUDED, NOOP = "writemix-ours", "writemix-excluded", "writemix-noop"
NAMESPACES = (OURS, EXCLUDED, NOOP)
NOOP_CONFIGURATION = "bench-writemix-noop"
ADMISSIONS = "registry_v2_policy_admission_requests_total"
GROUP, VERSION, STREAMS = "image.alauda.io", "v1", "imagestreams"
JSON_PATCH: dict[str, Any] = {
    "_content_type": "application/json-patch+json",  # the client picks merge patch for status
    "_preload_content": False,
}


@dataclass(frozen=True)
class Write:
    """One kind of write in the mix: ``weight`` of them per round; ``skipped`` says
    whether our matchConditions are meant to keep it from our server."""

    name: str
    weight: int
    skipped: bool


MIX = (
    # Controllers and GitOps tools stamp annotations on what they manage (sync status,
    # revision, last-applied): the most common write to an object after its create.
    Write("stream-annotation", 4, True),
    Write("stream-label", 2, True),
    # Another controller writing the stream's status beside the tags (its public URL).
    Write("stream-status-other", 2, True),
    # The registry recording a push: a history item in status.tags, judged by our rules.
    Write("stream-status-push", 2, False),
    Write("stream-spec-tag", 1, False),
    Write("stream-create", 1, False),
    # Workload-identity and GitOps controllers annotating and labelling accounts.
    Write("sa-annotation", 4, True),
    Write("sa-label", 1, True),
    Write("sa-create", 1, False),
)
"""The mix, an assumption stated here: 18 writes a round, 13 of them (72 %) of kinds that
change nothing our rules read. The share measured is this mix's; another cluster's
differs with its own mix of metadata updates, pushes and creates."""


def _api(stack: Stack) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(str(stack.kubeconfig), client_configuration=configuration)
    return client.ApiClient(configuration)


def _stream(namespace: str, name: str) -> dict[str, Any]:
    """A stream with one tag, one image in its history (``bench.samples``'s spelling)."""
    return samples.imagestream(namespace, name, tags=1, history=1)


def _set_up(api: client.ApiClient, namespace: str) -> None:
    """``OBJECTS`` streams (each with a pushed tag in its status) and accounts."""
    core, objects = client.CoreV1Api(api), client.CustomObjectsApi(api)
    for n in range(OBJECTS):
        name = f"app-{n}"
        stream = _stream(namespace, name)
        objects.create_namespaced_custom_object(
            GROUP, VERSION, namespace, STREAMS, samples.created(stream), _preload_content=False
        )
        status = [{"op": "add", "path": "/status", "value": stream["status"]}]
        objects.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, STREAMS, name, status, **JSON_PATCH
        )
        account = {
            "metadata": {"name": name, "labels": {"app": name}, "annotations": {"owner": "bench"}}
        }
        core.create_namespaced_service_account(namespace, account, _preload_content=False)


def _writers(api: client.ApiClient, namespace: str) -> dict[str, Callable[[int], None]]:
    """One function per kind of write in ``MIX``: the ``i``-th write of that kind."""
    core, objects = client.CoreV1Api(api), client.CustomObjectsApi(api)

    def target(i: int) -> str:
        return f"app-{i % OBJECTS}"

    def stream_patch(i: int, ops: list[dict[str, Any]]) -> None:
        objects.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, STREAMS, target(i), ops, **JSON_PATCH
        )

    def status_patch(i: int, ops: list[dict[str, Any]]) -> None:
        objects.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, STREAMS, target(i), ops, **JSON_PATCH
        )

    def sa_patch(i: int, ops: list[dict[str, Any]]) -> None:
        core.patch_namespaced_service_account(target(i), namespace, ops, **JSON_PATCH)

    def add(path: str, value: Any) -> list[dict[str, Any]]:
        return [{"op": "add", "path": path, "value": value}]

    synced = "/metadata/annotations/bench.example.com~1synced-revision"
    public = "/status/publicDockerImageRepository"
    return {
        "stream-annotation": lambda i: stream_patch(i, add(synced, str(i))),
        "stream-label": lambda i: stream_patch(i, add("/metadata/labels/revision", str(i))),
        "stream-status-other": lambda i: status_patch(i, add(public, f"r{i}.example.com/x")),
        "stream-status-push": lambda i: status_patch(
            i,
            add(
                "/status/tags/0/items/0",
                samples.history_item(namespace, target(i), OBJECTS + i),
            ),
        ),
        "stream-spec-tag": lambda i: stream_patch(i, add("/spec/tags/-", {"name": f"t{i}"})),
        "stream-create": lambda i: objects.create_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            STREAMS,
            samples.created(_stream(namespace, f"new-{i}")),
            _preload_content=False,
        ),
        "sa-annotation": lambda i: sa_patch(i, add(synced, str(i))),
        "sa-label": lambda i: sa_patch(i, add("/metadata/labels/revision", str(i))),
        "sa-create": lambda i: core.create_namespaced_service_account(
            namespace, {"metadata": {"name": f"new-{i}"}}, _preload_content=False
        ),
    }


def noop_configurations(url: str, ca_bundle: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """The no-op webhook with our rules, for the ``NOOP`` namespace only, and without
    matchConditions on the streams and accounts: every write there is sent."""
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
            if not webhook["name"].startswith("noop-policies."):
                webhook.pop("matchConditions", None)
    return mutating, validating


def _start_noop(stack: Stack, api: client.ApiClient) -> subprocess.Popen[bytes]:
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    certs = stack.certs_dir
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.noopwebhook",
            str(port),
            str(certs / "tls.crt"),
            str(certs / "tls.key"),
        ],
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

    wait_for(called, timeout=START_DEADLINE, what="the API server to call the no-op webhook")
    return process


def _reviews(stack: Stack) -> float:
    pages = [requests.get(url, timeout=10).text for url in stack.webhook_metrics_urls]
    return metric_sum(pages, ADMISSIONS)


def schedule(rounds: int) -> list[Write]:
    """The writes of ``rounds`` rounds, each round's kinds interleaved (not in blocks)."""
    one = [w for w in MIX for _ in range(w.weight)]
    spread = sorted(range(len(one)), key=lambda k: (k * 7) % len(one))
    return [one[k] for _ in range(rounds) for k in spread]


def _run(
    api: client.ApiClient, stack: Stack, rounds: int
) -> tuple[dict[tuple[str, bool], list[float]], int, float]:
    """Every write of the schedule in each namespace, the namespaces' order rotated
    write by write; times in ms by (namespace, skipped), our writes and our reviews."""
    writers = {ns: _writers(api, ns) for ns in NAMESPACES}
    counters = {w.name: itertools.count() for w in MIX}
    times: dict[tuple[str, bool], list[float]] = {
        (ns, skipped): [] for ns in NAMESPACES for skipped in (True, False)
    }
    writes = schedule(rounds)
    before = _reviews(stack)
    for k, write in enumerate(writes):
        i = next(counters[write.name])
        order = NAMESPACES[k % 3 :] + NAMESPACES[: k % 3]
        for ns in order:
            started = time.perf_counter()
            writers[ns][write.name](i)
            times[(ns, write.skipped)].append((time.perf_counter() - started) * 1000)
    return times, len(writes), _reviews(stack) - before


def _figures(
    report: Report, times: dict[tuple[str, bool], list[float]], writes: int, reviews: float
) -> None:
    report.add(
        Figure(NAME, "write mix: share never sent to our server", 100 * (1 - reviews / writes), "%")
    )
    for label, skipped in (("skipped", True), ("sent", False)):
        mine = times[(OURS, skipped)]
        for p in (50, 99):
            report.add(
                Figure(
                    NAME,
                    f"{label} writes p{p}",
                    percentile(mine, p),
                    "ms",
                    percentile(times[(EXCLUDED, skipped)], p),
                    "excluded namespace",
                )
            )
        if skipped:
            report.add(
                Figure(
                    NAME,
                    f"{label} writes p50 vs sent to a no-op webhook",
                    percentile(mine, 50),
                    "ms",
                    percentile(times[(NOOP, skipped)], 50),
                    "no-op webhook",
                )
            )
    for (ns, skipped), taken in times.items():
        report.series[f"{ns}/{'skipped' if skipped else 'sent'}"] = taken
    report.notes.append(
        f"{writes} writes in {OURS}, {reviews:.0f} reviews answered by our server; "
        f"expected sent: {sum(w.weight for w in MIX if not w.skipped)} of "
        f"{sum(w.weight for w in MIX)} a round"
    )
    plots.latency_cdf(
        f"{NAME}-skipped",
        "Writes our matchConditions skip: ours vs excluded vs sent to a no-op webhook",
        {
            "ours (skipped)": times[(OURS, True)],
            "excluded namespace": times[(EXCLUDED, True)],
            "no-op webhook (sent)": times[(NOOP, True)],
        },
    )


def main(argv: list[str]) -> list[Figure]:
    parser = argparse.ArgumentParser(prog="python -m bench writemix", description=__doc__)
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="rounds of the mix")
    args = parser.parse_args(argv)
    report = Report(NAME)
    progress("starting the local stack (control plane, 2 webhook replicas, 2 controllers)")
    baselines = [f"--excluded-namespace={ns}" for ns in (EXCLUDED, NOOP)]
    stack = Stack(ControlPlane(), webhook_args=baselines, controller_args=baselines)
    stack.start()
    noop: subprocess.Popen[bytes] | None = None
    try:
        with _api(stack) as api:
            core = client.CoreV1Api(api)
            for ns in NAMESPACES:
                labels = (
                    {} if ns == OURS else {registration.EXEMPT_LABEL: registration.EXEMPT_VALUE}
                )
                body = {"metadata": {"name": ns, "labels": labels}}
                core.create_namespace(body, _preload_content=False)
            progress("starting the no-op webhook")
            noop = _start_noop(stack, api)
            for ns in NAMESPACES:
                _set_up(api, ns)
            per_round = sum(w.weight for w in MIX)
            progress(f"{args.rounds} rounds of {per_round} writes in each of {NAMESPACES}")
            times, writes, reviews = _run(api, stack, args.rounds)
    finally:
        if noop is not None:
            noop.terminate()
            noop.wait(timeout=30)
        stack.stop()
    _figures(report, times, writes, reviews)
    path = report.write()
    progress(f"wrote {path}; {json.dumps(report.notes)}")
    return report.figures
