"""Latency (p50, p99) and throughput of ``/validate/imagestreams`` and of the PushReview
API over TLS, against our real server with its caches fed by the real API server.

Load comes from worker processes on the same machine (each with keep-alive connections),
so client and server share the 2 cores: the figures are a floor, not a ceiling.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import time
import uuid
from typing import Any

import requests

from bench.machine import describe
from bench.report import Figure
from localcluster.cluster import ControlPlane
from localcluster.stack import Stack
from localcluster.waiting import wait_for

NS = "bench"


def _digest(n: int) -> str:
    return "sha256:" + f"{n:064x}"


def _stream(tags: int, history: int) -> dict[str, Any]:
    return {
        "apiVersion": "image.alauda.io/v1",
        "kind": "ImageStream",
        "metadata": {"name": "app", "namespace": NS},
        "spec": {"tags": [{"name": f"v{i}"} for i in range(tags)]},
        "status": {
            "tags": [
                {"tag": f"v{i}", "items": [{"image": _digest(i * 100 + j)} for j in range(history)]}
                for i in range(tags)
            ]
        },
    }


def _review(operation: str, obj: dict[str, Any], old: dict[str, Any] | None, **extra: Any) -> bytes:
    request = {
        "uid": str(uuid.uuid4()),
        "kind": {"group": "image.alauda.io", "version": "v1", "kind": "ImageStream"},
        "resource": {"group": "image.alauda.io", "version": "v1", "resource": "imagestreams"},
        "operation": operation,
        "namespace": NS,
        "name": obj["metadata"]["name"],
        "object": obj,
        "oldObject": old,
        "userInfo": {"username": "bench"},
        **extra,
    }
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    return json.dumps(review).encode()


def validate_mix() -> list[tuple[str, str, bytes]]:
    """(label, path, body): 50 % spec updates, 30 % dry-run creates, 20 % status updates
    that add an image (size looked up in the Image cache)."""
    base = _stream(10, 2)
    grown = json.loads(json.dumps(base))
    grown["status"]["tags"][0]["items"].append({"image": _digest(999_999)})
    create = json.loads(json.dumps(base))
    create["metadata"]["name"] = "new-stream"
    mix = (
        [("update", "/validate/imagestreams", _review("UPDATE", base, base))] * 5
        + [
            (
                "create-dry-run",
                "/validate/imagestreams",
                _review("CREATE", create, None, dryRun=True),
            )
        ]
        * 3
        + [
            (
                "status-update",
                "/validate/imagestreams",
                _review("UPDATE", grown, base, subResource="status"),
            )
        ]
        * 2
    )
    return mix


def push_mix() -> list[tuple[str, str, bytes]]:
    """70 % tag pushes to the existing stream, 30 % digest pushes to a new repository."""

    def body(repository: str, tag: str | None, n: int) -> bytes:
        spec: dict[str, Any] = {
            "namespace": NS,
            "repository": repository,
            "digest": _digest(n),
            "config": {"digest": _digest(n + 1), "size": 1469},
            "layers": [{"digest": _digest(n + 2 + i), "size": 2_811_478} for i in range(5)],
        }
        if tag:
            spec["tag"] = tag
        return json.dumps(
            {"apiVersion": "image.alauda.io/v1", "kind": "PushReview", "spec": spec}
        ).encode()

    return [("push-tag", "/v1/pushreviews", body("app", "v1", 1))] * 7 + [
        ("push-digest-new-repo", "/v1/pushreviews", body("fresh", None, 2))
    ] * 3


Tls = tuple[str, tuple[str, str]]
"""The CA that verifies our server, and the API server's webhook client certificate
(admission reviews need it; PushReview ignores it)."""


def _worker(args: tuple[str, Tls, str | None, list[tuple[str, str, bytes]], int]) -> list[float]:
    url, (ca, cert), token, mix, count = args
    session = requests.Session()
    session.cert = cert
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    latencies = []
    for i in range(count):
        _, path, body = mix[i % len(mix)]
        started = time.perf_counter()
        response = session.post(url + path, data=body, headers=headers, verify=ca, timeout=30)
        latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")
    return latencies


def _run(
    name: str,
    url: str,
    ca: Tls,
    token: str | None,
    mix: list[tuple[str, str, bytes]],
    clients: int,
    per_client: int,
) -> None:
    # Warm up connections and caches.
    _worker((url, ca, token, mix, len(mix)))
    started = time.perf_counter()
    with multiprocessing.Pool(clients) as pool:
        results = pool.map(_worker, [(url, ca, token, mix, per_client)] * clients)
    elapsed = time.perf_counter() - started
    latencies = sorted(x for r in results for x in r)
    q = statistics.quantiles(latencies, n=100)
    labels: dict[str, int] = {}
    for label, _, _ in mix:
        labels[label] = labels.get(label, 0) + 1
    share = ", ".join(f"{100 * v // len(mix)}% {k}" for k, v in labels.items())
    print(f"{name}: {len(latencies)} requests, {clients} client processes, keep-alive TLS")
    print(f"  mix: {share}")
    print(
        f"  p50 {q[49] * 1000:.2f} ms   p90 {q[89] * 1000:.2f} ms   p99 {q[98] * 1000:.2f} ms   "
        f"max {latencies[-1] * 1000:.2f} ms"
    )
    print(f"  throughput {len(latencies) / elapsed:.0f} requests/s")


def main(argv: list[str]) -> list[Figure]:
    parser = argparse.ArgumentParser(prog="python -m bench webhook")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=4000, help="per endpoint, in total")
    args = parser.parse_args(argv)
    print(f"machine: {describe()}")
    # The controller counts the quota's usage, which creates wait for.
    stack = Stack(ControlPlane())
    stack.start()
    try:
        kubectl = stack.kubectl
        kubectl("create", "namespace", NS)
        limits = {
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": {"name": "limits"},
            "spec": {
                "limits": [
                    {
                        "type": "alauda.io/ImageStream",
                        "max": {"alauda.io/image-tags": "50", "alauda.io/images": "500"},
                    },
                    {"type": "alauda.io/Image", "max": {"storage": "1Gi"}},
                ]
            },
        }
        quota = {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "streams"},
            "spec": {"hard": {"alauda.io/imagestreams": "100"}},
        }
        role = {
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
        }
        for obj in (limits, quota, role):
            kubectl("apply", "-n", NS, "-f", "-", input=json.dumps(obj))
        # A quota whose usage is not counted yet denies creates (unknown, not zero).
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
        stream = _stream(10, 2)
        stream.pop("status")
        kubectl("apply", "-f", "-", input=json.dumps(stream))
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
        token = kubectl("create", "token", "registry", "-n", NS).strip()
        client_cert, client_key = stack.api_server_client_cert
        ca = (str(stack.certs_dir / "ca.crt"), (str(client_cert), str(client_key)))
        url = stack.webhook_url

        def ready() -> bool:
            return stack.webhook_get("/readyz")[0] == 200

        wait_for(ready, timeout=30, what="webhook readiness")
        per_client = args.requests // args.clients
        _run("validate/imagestreams", url, ca, None, validate_mix(), args.clients, per_client)
        _run("PushReview", url, ca, token, push_mix(), args.clients, per_client)
        print("  (TokenReview and SubjectAccessReview results are cached 10 s: one token here)")
    finally:
        stack.stop()
    return []
