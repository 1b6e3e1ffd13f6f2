"""How long until 2,000 new ServiceAccounts all have valid managed pull secrets, next to
the bare writes the same API server needs for that (create Secret, TokenRequest, write the
Secret, patch the SA) done directly from one client. The ratio is the figure."""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import time
from typing import Any

from kubernetes import client, config

from bench.machine import describe
from bench.report import Figure
from localcluster.cluster import ControlPlane
from localcluster.stack import Stack
from localcluster.waiting import wait_for

MANAGED = "image.alauda.io/managed-by=registry-v2-policy"


def _api(stack: Stack) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(str(stack.kubeconfig), client_configuration=configuration)
    configuration.connection_pool_maxsize = 32
    return client.ApiClient(configuration)


def _create_serviceaccounts(core: client.CoreV1Api, namespace: str, count: int) -> None:
    def create(i: int) -> None:
        core.create_namespaced_service_account(
            namespace, {"metadata": {"name": f"sa-{i:05d}"}}, _preload_content=False
        )

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(create, range(count)))


def _managed_secrets_with_tokens(core: client.CoreV1Api, namespace: str) -> int:
    response = core.list_namespaced_secret(
        namespace, label_selector=MANAGED, _preload_content=False
    )
    items: list[dict[str, Any]] = json.loads(response.data)["items"]
    return sum(
        1
        for s in items
        if s.get("metadata", {}).get("annotations", {}).get("image.alauda.io/token-expiration")
    )


def _bare_writes(core: client.CoreV1Api, namespace: str, count: int, workers: int) -> float:
    """The same API work, done directly: the floor any controller can reach."""

    def one(i: int) -> None:
        name = f"bare-{i:05d}"
        sa = json.loads(
            core.create_namespaced_service_account(
                namespace, {"metadata": {"name": name}}, _preload_content=False
            ).data
        )
        secret = json.loads(
            core.create_namespaced_secret(
                namespace,
                {
                    "metadata": {"name": f"{name}-x"},
                    "type": "kubernetes.io/dockerconfigjson",
                    "data": {".dockerconfigjson": "eyJhdXRocyI6e319"},
                },
                _preload_content=False,
            ).data
        )
        token = json.loads(
            core.create_namespaced_service_account_token(
                name,
                namespace,
                {
                    "spec": {
                        "audiences": [],
                        "expirationSeconds": 3600,
                        "boundObjectRef": {
                            "apiVersion": "v1",
                            "kind": "Secret",
                            "name": secret["metadata"]["name"],
                            "uid": secret["metadata"]["uid"],
                        },
                    }
                },
                _preload_content=False,
            ).data
        )["status"]["token"]
        secret["metadata"]["annotations"] = {"t": str(len(token))}
        core.replace_namespaced_secret(
            secret["metadata"]["name"], namespace, secret, _preload_content=False
        )
        core.patch_namespaced_service_account(
            name,
            namespace,
            [{"op": "add", "path": "/imagePullSecrets", "value": [{"name": f"{name}-x"}]}],
            _preload_content=False,
        )
        del sa

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(count)))
    return time.perf_counter() - started


def main(argv: list[str]) -> list[Figure]:
    parser = argparse.ArgumentParser(prog="python -m bench pull-secrets")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4, help="controller reconcile workers")
    parser.add_argument("--kube-api-qps", type=float, default=50.0, help="controller client QPS")
    parser.add_argument("--kube-api-burst", type=int, default=100)
    args = parser.parse_args(argv)
    print(f"machine: {describe()}")
    controller_args = [
        f"--reconcile-workers={args.workers}",
        f"--kube-api-qps={args.kube_api_qps}",
        f"--kube-api-burst={args.kube_api_burst}",
    ]
    stack = Stack(ControlPlane(), controller_args=controller_args)
    stack.start()
    try:
        api = _api(stack)
        core = client.CoreV1Api(api)
        # The bare run happens in an opted-out namespace, so the controller stays idle and
        # the API server serves only the bare writes.
        stack.kubectl("create", "namespace", "bench-bare")
        stack.kubectl(
            "label", "namespace", "bench-bare", "image.alauda.io/managed-pull-secret=false"
        )
        bare = _bare_writes(core, "bench-bare", args.count, args.workers)
        stack.kubectl("create", "namespace", "bench")
        started = time.perf_counter()
        _create_serviceaccounts(core, "bench", args.count)
        created = time.perf_counter() - started
        wait_for(
            lambda: _managed_secrets_with_tokens(core, "bench") >= args.count + 1,
            timeout=1800,
            interval=0.5,
            what="every ServiceAccount to have a valid secret",
        )
        total = time.perf_counter() - started
        print(f"service accounts: {args.count} (+ the namespace's default)")
        print(
            f"controller: {args.workers} workers, client-side limit "
            f"{args.kube_api_qps:g} qps / burst {args.kube_api_burst}"
        )
        print(f"creating the SAs took:                 {created:8.1f} s")
        print(
            f"all managed secrets valid after:        {total:8.1f} s  "
            f"({args.count / total:.0f} SA/s)"
        )
        print(
            f"bare writes, same work, {args.workers} threads:     {bare:8.1f} s  "
            f"({args.count / bare:.0f} SA/s)"
        )
        print(f"ratio (controller / bare writes):       {total / bare:8.2f}")
    finally:
        stack.stop()
    return []
