"""Scale: memory, cache sync and the pull-secret backlog of a cluster the size of a real one.

A real local control plane is filled, before any of our processes starts (our webhooks
would only slow the filling down), with ``--namespaces`` namespaces each holding an
``alauda.io`` LimitRange and ResourceQuota (through the API server), ``--imagestreams``
ImageStreams with tags and history and ``--images`` Images with a registry's metadata
(``--fill etcd``, the default: put straight into the control plane's etcd, see
``bench.etcdfill``; ``--fill api``: created through the API server, about 50 streams/s).
The fill is then listed through the API until every object is served. Then the stack
starts (two webhook replicas, two controllers, as ``make dev``) and the benchmark measures:

- **sync**: each process's start to its caches synced (a controller's ``/readyz``; a webhook
  pod's ``informer ...: listed`` log lines, one per worker and informer), next to the same
  lists paged through by one bare client, every process's lists at once as at start-up;
  target <= 1.1 x the bare lists (issue 21);
- **memory** after sync and again after the backlog: each webhook pod's total over its
  gunicorn master and workers (PSS, target 400 MiB) and each controller's RSS (target
  250 MiB after the backlog);
- **backlog**: ``--serviceaccounts`` new ServiceAccounts spread over the namespaces, from
  the first create until every one has a Secret with a token, against the bare writes the
  same API server takes for that work (create Secret, TokenRequest, write Secret, patch SA)
  from one client with as many threads as the controller has workers, in opted-out
  namespaces. ``--rounds`` rounds of ``serviceaccounts / rounds`` alternate (ours, bare,
  bare, ours), the controller's client rate limit raised (``--kube-api-qps``); target
  ours >= 0.8 x bare.

``--scale 0.2`` runs issue 11's size (20,000 Images); ``--scale 0.02`` a quick check.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import itertools
import json
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final

import requests
from kubernetes import client, config

from bench import etcdfill, plots, samples
from bench.report import Figure, Report, Target, alternate, progress
from kube.metadata import LIST_ACCEPT, metadata_list_func
from localcluster.cluster import ControlPlane
from localcluster.processes import ManagedProcess
from localcluster.stack import Stack
from localcluster.waiting import Timeout, wait_for
from quota.names import IMAGE_GROUP
from quota.pullsecrets.dockerconfig import build_dockerconfigjson
from quota.pullsecrets.names import (
    ANNOTATION_TOKEN_EXPIRATION,
    DEFAULT_INTERNAL_HOSTNAMES,
    DOCKERCONFIGJSON_KEY,
    MANAGED_SECRET_SELECTOR,
    OPT_OUT_KEY,
    OPT_OUT_VALUE,
    SECRET_NAME_SUFFIX,
)
from serving.config import DEFAULT_WORKERS
from webhook.caches import WebhookCaches

NAME: Final = "scale"
NAMESPACES: Final = 2_000
IMAGESTREAMS: Final = 50_000
IMAGES: Final = 100_000
SERVICEACCOUNTS: Final = 20_000
"""The issue's sizes (issue 21, "a cluster ten times larger")."""
WEBHOOK_POD_RSS_TARGET_MIB: Final = 400.0
CONTROLLER_RSS_TARGET_MIB: Final = 250.0
SYNC_TARGET_RATIO: Final = 1.1
BACKLOG_TARGET_RATIO: Final = 0.8
"""The issue's targets: a webhook pod's RSS (master and workers), a controller's after the
backlog, start-up sync over the bare lists' time (issue 21); backlog rate over bare rate
(issue 11)."""
FILL_THREADS: Final = 32
"""Concurrent creates while filling: enough to keep the API server busy on 2 cores."""
BENCH_QPS: Final = 1000.0
BENCH_BURST: Final = 2000
"""The controller's raised client-side limit here: far above what 2 cores can serve, so
the API server, not the token bucket, bounds the backlog."""
TAGS_PER_STREAM: Final = 5
HISTORY_PER_TAG: Final = 3
LAYERS_PER_IMAGE: Final = 5
LAYER_BYTES: Final = 1_000_000
"""A modest stream and image: 15 history items, 5 layers of about 1 MB."""
BARE_NAMESPACES: Final = 10
"""Opted-out namespaces the bare writes go to (the API server's cost hardly depends on
how SAs spread over namespaces)."""
POLL_SECONDS: Final = 0.1
"""How often start-up is polled: well below any sync time measured."""
BACKLOG_TIMEOUT: Final = 3600.0
"""An hour for one round of the backlog: 10x the slowest round measured (issue 11)."""
SYNC_BASE_SECONDS: Final = 60.0
SYNC_SECONDS_PER_OBJECT: Final = 0.005
"""The sync deadline: a minute to start plus 5 ms per cached object, about 4.5x the bare
lists' 1.1 ms per object measured at 20,000 Images and ImageStreams (42-47 s, issue 11's
run), so a slow run is measured, and a hung one still ends."""
LIST_TIMEOUT: Final = 600.0
"""Seconds for the API server to list every filled object after an etcd fill: its watch
cache follows etcd within seconds; minutes mean it does not."""
FILL_METHODS: Final = ("etcd", "api")
"""How the cluster is filled: ImageStreams and Images put straight into etcd (fast), or
every object created through the API server (about 50 streams/s on 2 cores)."""


def sync_timeout(objects: int) -> float:
    """Seconds to wait for every process's caches, from how many objects they list."""
    return SYNC_BASE_SECONDS + SYNC_SECONDS_PER_OBJECT * objects


# --- objects (pure) ------------------------------------------------------------------------


def namespace_name(i: int) -> str:
    return f"scale-{i:05d}"


def stream(namespace: str, name: str, index: int) -> dict[str, Any]:
    """Stream ``index`` of the fill, its history naming images of its own."""
    first = index * TAGS_PER_STREAM * HISTORY_PER_TAG
    return samples.imagestream(
        namespace, name, tags=TAGS_PER_STREAM, history=HISTORY_PER_TAG, first_image=first
    )


def image(i: int) -> dict[str, Any]:
    """A standalone Image with the metadata a registry records (config and layers)."""
    return samples.image(namespace_name(0), i, layers=LAYERS_PER_IMAGE, layer_bytes=LAYER_BYTES)


def scaled(value: int, scale: float) -> int:
    return max(1, round(value * scale))


def ready_secret_count(page: Mapping[str, Any], prefix: str) -> int:
    """Managed Secrets (metadata list) of ServiceAccounts named ``prefix...`` that carry a
    token: the reconciler wrote them after a TokenRequest."""
    return sum(
        1
        for item in page.get("items") or []
        if (item.get("metadata") or {}).get("name", "").startswith(prefix)
        and ANNOTATION_TOKEN_EXPIRATION in ((item.get("metadata") or {}).get("annotations") or {})
    )


_RSS = re.compile(r"^VmRSS:\s+(\d+)\s+kB$", re.MULTILINE)
_PSS = re.compile(r"^Pss:\s+(\d+)\s+kB$", re.MULTILINE)


def rss_mib(status: str) -> float | None:
    """Resident set size from a ``/proc/<pid>/status`` text, in MiB."""
    found = _RSS.search(status)
    return int(found.group(1)) / 1024 if found else None


def pss_mib(rollup: str) -> float | None:
    """Proportional set size from a ``/proc/<pid>/smaps_rollup`` text, in MiB: pages
    shared after gunicorn's fork counted once across the processes sharing them."""
    found = _PSS.search(rollup)
    return int(found.group(1)) / 1024 if found else None


def pod_totals(memory: Mapping[str, float], pods: Iterable[str]) -> dict[str, float]:
    """Each webhook pod's total over its master and workers (labels ``<pod> ...``)."""
    return {
        pod: sum(mib for label, mib in memory.items() if label.startswith(f"{pod} "))
        for pod in pods
    }


# --- processes -------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _rss_of(pid: int) -> float | None:
    try:
        return rss_mib(Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return None


def _pss_of(pid: int) -> float | None:
    try:
        return pss_mib(Path(f"/proc/{pid}/smaps_rollup").read_text())
    except OSError:
        return None


def _our_pids(stack: Stack) -> list[tuple[str, int]]:
    """Every webhook replica's gunicorn master and workers, every controller."""
    found: list[tuple[str, int]] = []
    for process in stack.webhooks:
        found.append((f"{process.name} master", process.pid))
        found.extend(
            (f"{process.name} worker {n}", child)
            for n, child in enumerate(_children(process.pid), start=1)
        )
    found.extend((process.name, process.pid) for process in stack.controllers)
    return found


def process_memory(stack: Stack, read: Callable[[int], float | None]) -> dict[str, float]:
    """``read`` (RSS or PSS) of each of our processes, by label."""
    return {label: mib for label, pid in _our_pids(stack) if (mib := read(pid)) is not None}


def process_rss(stack: Stack) -> dict[str, float]:
    return process_memory(stack, _rss_of)


def process_pss(stack: Stack) -> dict[str, float]:
    return process_memory(stack, _pss_of)


_LISTED = re.compile(r"informer ([^:]+): listed \d+ objects")


def _webhook_synced(process: ManagedProcess, informers: int, workers: int) -> bool:
    """Every informer of every worker has listed: each worker of a pod keeps its own caches
    and logs to the pod's one log, so each informer's line must appear once per worker."""
    try:
        text = process.log_path.read_text(errors="replace")
    except OSError:
        return False
    listed = Counter(_LISTED.findall(text))
    return len(listed) >= informers and all(n >= workers for n in listed.values())


def _controller_synced(process: ManagedProcess) -> bool:
    url = f"http://127.0.0.1:{process.ports['health']}/readyz"
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False


@dataclass
class SyncWatch:
    """Polls, from before our processes start, how long each takes to sync its caches."""

    stack: Stack
    webhook_informers: int
    webhook_workers: int = DEFAULT_WORKERS
    seconds: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sync-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            for process in self.stack.webhooks:
                if process.name not in self.seconds and _webhook_synced(
                    process, self.webhook_informers, self.webhook_workers
                ):
                    self.seconds[process.name] = time.monotonic() - process.started
            for process in self.stack.controllers:
                if process.name not in self.seconds and _controller_synced(process):
                    self.seconds[process.name] = time.monotonic() - process.started

    def wait(self, names: Iterable[str], timeout: float) -> dict[str, float]:
        """Seconds to sync of each of ``names``; ``inf`` for one not synced by ``timeout``
        (a missed target, reported with the rest of the figures, not a lost run)."""
        wanted = list(names)
        try:
            wait_for(
                lambda: all(n in self.seconds for n in wanted),
                timeout=timeout,
                interval=POLL_SECONDS,
                what=f"caches of {', '.join(wanted)} to sync",
            )
        except Timeout as err:
            progress(f"  {err}: measuring the rest anyway")
        self._stop.set()
        return {name: self.seconds.get(name, math.inf) for name in wanted}


def webhook_informers() -> int:
    """How many informers each webhook worker starts (each logs ``listed`` once synced)."""
    return len(WebhookCaches(client.ApiClient()).informers)


# --- bare lists: what the API server takes to hand a process its caches ----------------------

FULL: Final = "application/json"
METADATA: Final = LIST_ACCEPT
ListSpec = tuple[str, dict[str, str], str]
"""A path, its query and the Accept header (full objects or metadata only)."""
WEBHOOK_LISTS: Final[tuple[ListSpec, ...]] = (
    ("/api/v1/namespaces", {}, FULL),
    ("/api/v1/limitranges", {}, FULL),
    ("/api/v1/resourcequotas", {}, FULL),
    ("/apis/image.alauda.io/v1/images", {}, FULL),
    ("/apis/image.alauda.io/v1/imagestreams", {}, FULL),
    ("/api/v1/secrets", {"fieldSelector": "type=kubernetes.io/dockerconfigjson"}, METADATA),
    ("/api/v1/secrets", {"fieldSelector": "type=kubernetes.io/dockercfg"}, METADATA),
)
CONTROLLER_LISTS: Final[tuple[ListSpec, ...]] = (
    ("/api/v1/serviceaccounts", {}, FULL),
    ("/api/v1/secrets", {"labelSelector": MANAGED_SECRET_SELECTOR}, FULL),
    ("/api/v1/namespaces", {}, FULL),
    ("/api/v1/resourcequotas", {}, FULL),
    ("/apis/image.alauda.io/v1/imagestreams", {}, FULL),
    ("/apis/image.alauda.io/v1/images", {}, FULL),
)
"""The lists each process's informers make at start-up, in the form the process lists them
(since issue 20 the quota usage controller reads ImageStreams' history and Images' blobs,
so it lists both whole)."""
PAGE_SIZE: Final = 500
"""The informer's page size (``kube.informer.Informer``)."""


def bare_lists(
    api: client.ApiClient, groups: Mapping[str, tuple[ListSpec, ...]]
) -> dict[str, float]:
    """Seconds until each group's lists are paged through, every list of every group at
    once on its own thread (all our processes list at start-up together), each page
    decoded: the API server's part of each process's cache sync."""

    def get(path: str, params: list[tuple[str, str]], accept: str) -> Any:
        response = api.call_api(
            path,
            "GET",
            query_params=params,
            header_params={"Accept": accept},
            auth_settings=["BearerToken"],
            _preload_content=False,
            _return_http_data_only=True,
            _request_timeout=120,
        )
        return json.loads(response.data)

    def pages(path: str, query: dict[str, str], accept: str) -> None:
        """Paged as our informers page, and, as they do (client-go's FullListIfExpired), one
        whole list when a continue token expires mid-list (etcd compacts every 5 min)."""
        token = ""
        while True:
            params = [*query.items(), ("limit", str(PAGE_SIZE))]
            if token:
                params.append(("continue", token))
            try:
                page = get(path, params, accept)
            except client.exceptions.ApiException as err:
                if not (token and err.status == HTTPStatus.GONE):
                    raise
                page = get(path, list(query.items()), accept)
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                return

    started = time.perf_counter()
    finished: dict[str, float] = {}

    def group(name: str, lists: tuple[ListSpec, ...]) -> None:
        with concurrent.futures.ThreadPoolExecutor(len(lists)) as pool:
            for future in [pool.submit(pages, *entry) for entry in lists]:
                future.result()
        finished[name] = time.perf_counter() - started

    with concurrent.futures.ThreadPoolExecutor(len(groups)) as pool:
        for future in [pool.submit(group, *item) for item in groups.items()]:
            future.result()
    return finished


# --- filling ----------------------------------------------------------------------------------


def _api(kubeconfig: Path) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(str(kubeconfig), client_configuration=configuration)
    configuration.connection_pool_maxsize = FILL_THREADS
    return client.ApiClient(configuration)


def _parallel(what: str, job: Callable[[Any], object], items: list[Any]) -> float:
    started = time.perf_counter()
    done, total = 0, len(items)
    with concurrent.futures.ThreadPoolExecutor(FILL_THREADS) as pool:
        for future in concurrent.futures.as_completed([pool.submit(job, i) for i in items]):
            future.result()
            done += 1
            if done % max(1, total // 10) == 0 or done == total:
                progress(f"  {what}: {done:,}/{total:,}")
    return time.perf_counter() - started


def fill_namespaces(api: client.ApiClient, namespaces: int) -> float:
    """Namespaces, each with its LimitRange and ResourceQuota, through the API server (core
    kinds are stored as protobuf: never put into etcd by hand); seconds taken."""
    core = client.CoreV1Api(api)

    def namespace(ns: str) -> None:
        core.create_namespace({"metadata": {"name": ns}}, _preload_content=False)
        core.create_namespaced_limit_range(ns, samples.limit_range(), _preload_content=False)
        core.create_namespaced_resource_quota(ns, samples.resource_quota(), _preload_content=False)

    names = [namespace_name(i) for i in range(namespaces)]
    return _parallel("namespaces with LimitRange and ResourceQuota", namespace, names)


def _stream_at(i: int, namespaces: int) -> dict[str, Any]:
    """The ``i``-th stream of the fill: spread round-robin over the namespaces."""
    return stream(namespace_name(i % namespaces), f"stream-{i // namespaces:05d}", i)


def fill_api(api: client.ApiClient, namespaces: int, streams: int, images: int) -> dict[str, float]:
    """ImageStreams (create, then status) and Images through the API server; seconds each."""
    custom = client.CustomObjectsApi(api)

    def one_stream(i: int) -> None:
        sample = _stream_at(i, namespaces)
        ns, name = sample["metadata"]["namespace"], sample["metadata"]["name"]
        created = json.loads(
            custom.create_namespaced_custom_object(
                IMAGE_GROUP,
                "v1",
                ns,
                "imagestreams",
                samples.created(sample),
                _preload_content=False,
            ).data
        )
        created["status"] = sample["status"]
        custom.replace_namespaced_custom_object_status(
            IMAGE_GROUP, "v1", ns, "imagestreams", name, created, _preload_content=False
        )

    def one_image(i: int) -> None:
        custom.create_cluster_custom_object(
            IMAGE_GROUP, "v1", "images", samples.created(image(i)), _preload_content=False
        )

    return {
        "imagestreams": _parallel(
            "ImageStreams (create, then status)", one_stream, list(range(streams))
        ),
        "images": _parallel("Images", one_image, list(range(images))),
    }


def fill_etcd(url: str, namespaces: int, streams: int, images: int) -> dict[str, float]:
    """ImageStreams (status included) and Images put straight into etcd (``bench.etcdfill``);
    seconds each."""
    took: dict[str, float] = {}
    for resource, make, count in (
        ("imagestreams", lambda i: _stream_at(i, namespaces), streams),
        ("images", image, images),
    ):
        started = time.perf_counter()
        step = max(1, count // 10)

        def report(
            done: int, resource: str = resource, count: int = count, step: int = step
        ) -> None:
            if done % step < etcdfill.TXN_OPS or done == count:
                progress(f"  {resource} into etcd: {done:,}/{count:,}")

        etcdfill.put_all(url, IMAGE_GROUP, resource, make, count, report)
        took[resource] = time.perf_counter() - started
    return took


def listed_count(api: client.ApiClient, path: str) -> int:
    """How many objects the API server lists at ``path``: one item of a paged list, plus the
    ``remainingItemCount`` it reports."""
    response = api.call_api(
        path,
        "GET",
        query_params=[("limit", "1")],
        header_params={"Accept": METADATA},
        auth_settings=["BearerToken"],
        _preload_content=False,
        _return_http_data_only=True,
        _request_timeout=60,
    )
    page = json.loads(response.data)
    return len(page.get("items") or []) + int(
        (page.get("metadata") or {}).get("remainingItemCount") or 0
    )


def wait_listed(api: client.ApiClient, expected: Mapping[str, int]) -> dict[str, int]:
    """Wait until the API server lists at least ``expected[path]`` objects at each path:
    what was put into etcd is served, through the API, before our processes start."""
    counts: dict[str, int] = {}

    def all_listed() -> bool:
        counts.update({path: listed_count(api, path) for path in expected})
        return all(counts[path] >= n for path, n in expected.items())

    wait_for(all_listed, timeout=LIST_TIMEOUT, interval=1.0, what=f"lists of {expected}")
    return counts


# --- backlog ----------------------------------------------------------------------------------


def _ready_secrets(secrets: Callable[..., Any], prefix: str) -> int:
    page = json.loads(secrets(label_selector=MANAGED_SECRET_SELECTOR).data)
    return ready_secret_count(page, prefix)


def controller_backlog(
    core: client.CoreV1Api,
    secrets: Callable[..., Any],
    namespaces: list[str],
    count: int,
    prefix: str,
) -> float:
    """Seconds from the first of ``count`` new SAs to every one having a tokened Secret."""
    started = time.perf_counter()

    def create(i: int) -> None:
        core.create_namespaced_service_account(
            namespaces[i % len(namespaces)],
            {"metadata": {"name": f"{prefix}{i:05d}"}},
            _preload_content=False,
        )

    with concurrent.futures.ThreadPoolExecutor(FILL_THREADS) as pool:
        list(pool.map(create, range(count)))
    progress(f"  {count:,} SAs created in {time.perf_counter() - started:.1f} s; waiting")
    wait_for(
        lambda: _ready_secrets(secrets, prefix) >= count,
        timeout=BACKLOG_TIMEOUT,
        interval=1.0,
        what=f"{count} managed secrets with tokens",
    )
    return time.perf_counter() - started


def bare_writes(
    core: client.CoreV1Api, namespaces: list[str], count: int, prefix: str, threads: int
) -> float:
    """The same API work done directly from one client: the floor any controller reaches.

    Shaped as the controller's run: SAs created by ``FILL_THREADS`` threads, naming their
    Secret as our webhook makes them do, and as each exists, its Secret, token and Secret
    write done by one of ``threads``."""

    def create(i: int) -> None:
        name = f"{prefix}{i:05d}"
        core.create_namespaced_service_account(
            namespaces[i % len(namespaces)],
            {
                "metadata": {"name": name},
                "imagePullSecrets": [{"name": name + SECRET_NAME_SUFFIX}],
            },
            _preload_content=False,
        )

    def one(i: int) -> None:
        ns, name = namespaces[i % len(namespaces)], f"{prefix}{i:05d}"
        secret_name = name + SECRET_NAME_SUFFIX
        secret = json.loads(
            core.create_namespaced_secret(
                ns,
                {
                    "metadata": {"name": secret_name},
                    "type": "kubernetes.io/dockerconfigjson",
                    "data": {".dockerconfigjson": "eyJhdXRocyI6e319"},
                },
                _preload_content=False,
            ).data
        )
        token = json.loads(
            core.create_namespaced_service_account_token(
                name,
                ns,
                {
                    "spec": {
                        "audiences": ["image-registry.alauda.io"],
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
        secret["metadata"]["annotations"] = {ANNOTATION_TOKEN_EXPIRATION: str(len(token))}
        payload = build_dockerconfigjson(DEFAULT_INTERNAL_HOSTNAMES, token)
        secret["data"] = {DOCKERCONFIGJSON_KEY: base64.b64encode(payload).decode("ascii")}
        core.replace_namespaced_secret(
            secret["metadata"]["name"], ns, secret, _preload_content=False
        )

    started = time.perf_counter()
    with (
        concurrent.futures.ThreadPoolExecutor(FILL_THREADS) as creators,
        concurrent.futures.ThreadPoolExecutor(threads) as workers,
    ):
        created = [creators.submit(create, i) for i in range(count)]
        chains = []
        for i, future in enumerate(created):
            future.result()
            chains.append(workers.submit(one, i))
        for chain in chains:
            chain.result()
    return time.perf_counter() - started


# --- the benchmark ----------------------------------------------------------------------------


def _options(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench scale", description=__doc__)
    parser.add_argument("--namespaces", type=int, default=NAMESPACES)
    parser.add_argument("--imagestreams", type=int, default=IMAGESTREAMS)
    parser.add_argument("--images", type=int, default=IMAGES)
    parser.add_argument("--serviceaccounts", type=int, default=SERVICEACCOUNTS)
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply every size by this (0.2: issue 11's 20,000 Images; 0.02: a quick run)",
    )
    parser.add_argument(
        "--fill",
        choices=FILL_METHODS,
        default=FILL_METHODS[0],
        help="etcd: ImageStreams and Images put into etcd (minutes); api: every object "
        "created through the API server (about 50 streams/s)",
    )
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the backlog")
    parser.add_argument("--workers", type=int, default=4, help="controller reconcile workers")
    parser.add_argument("--kube-api-qps", type=float, default=BENCH_QPS)
    parser.add_argument("--kube-api-burst", type=int, default=BENCH_BURST)
    parser.add_argument(
        "--no-backlog", action="store_true", help="measure RSS and sync only (faster)"
    )
    args = parser.parse_args(argv)
    for size in ("namespaces", "imagestreams", "images", "serviceaccounts"):
        setattr(args, size, scaled(getattr(args, size), args.scale))
    return args


def fill_cluster(stack: Stack, args: argparse.Namespace, filled: dict[str, float]) -> None:
    """Fill the cluster by ``args.fill`` (``args.namespaces``, ``imagestreams``, ``images``),
    then check through the API that it lists all; ``bench.cachememory`` fills the same way."""
    progress(
        f"filling ({args.fill}): {args.namespaces:,} namespaces, {args.imagestreams:,} "
        f"ImageStreams, {args.images:,} Images"
    )
    with _api(stack.kubeconfig) as api:
        filled["namespaces"] = fill_namespaces(api, args.namespaces)
        if args.fill == "etcd":
            apiserver = next(p for p in stack.cp.processes if p.name == "kube-apiserver")
            url = etcdfill.etcd_url(apiserver.argv)
            filled.update(fill_etcd(url, args.namespaces, args.imagestreams, args.images))
        else:
            filled.update(fill_api(api, args.namespaces, args.imagestreams, args.images))
        started = time.perf_counter()
        counts = wait_listed(
            api,
            {
                "/api/v1/namespaces": args.namespaces,
                "/api/v1/resourcequotas": args.namespaces,
                "/apis/image.alauda.io/v1/imagestreams": args.imagestreams,
                "/apis/image.alauda.io/v1/images": args.images,
            },
        )
        progress(
            "  listed through the API "
            f"{time.perf_counter() - started:.1f} s after the fill: "
            + ", ".join(f"{path.rsplit('/', 1)[1]} {n:,}" for path, n in counts.items())
        )


def main(argv: list[str]) -> list[Figure]:
    args = _options(argv)
    report = Report(NAME)
    objects = 3 * args.namespaces + args.imagestreams + args.images
    timeout = sync_timeout(objects)
    report.notes.append(
        f"{args.namespaces} namespaces, {args.imagestreams} ImageStreams, {args.images} "
        f"Images ({args.fill} fill), {args.serviceaccounts} new ServiceAccounts; controller "
        f"{args.workers} workers at {args.kube_api_qps:g} qps / burst {args.kube_api_burst}"
    )
    stack = Stack(
        ControlPlane(),
        controller_args=[
            f"--reconcile-workers={args.workers}",
            f"--kube-api-qps={args.kube_api_qps}",
            f"--kube-api-burst={args.kube_api_burst}",
        ],
    )
    watch = SyncWatch(stack, webhook_informers=webhook_informers())
    filled: dict[str, float] = {}
    bare_list: dict[str, float] = {}

    def prepare() -> None:
        fill_cluster(stack, args, filled)
        progress(f"starting our processes (sync deadline {timeout:.0f} s)")
        watch.start()

    after: dict[str, float] = {}
    after_pss: dict[str, float] = {}
    try:
        stack.start(timeout=timeout, prepare=prepare)
        sync = watch.wait(stack.webhook_names + stack.controller_names, timeout)
        for name, seconds in sorted(sync.items()):
            progress(f"  {name}: synced {seconds:.1f} s after its start")
        rss, pss = process_rss(stack), process_pss(stack)
        report.series["fill_seconds"] = list(filled.values())
        groups = {name: WEBHOOK_LISTS for name in stack.webhook_names} | {
            name: CONTROLLER_LISTS for name in stack.controller_names
        }
        with _api(stack.kubeconfig) as api:
            bare_list.update(bare_lists(api, groups))
        for name, seconds in sorted(bare_list.items()):
            progress(f"  bare lists of {name}'s kinds, all at once: {seconds:.1f} s")
        if not args.no_backlog:
            rates: tuple[float, float] | None = _backlog(stack, args, report)
            after, after_pss = process_rss(stack), process_pss(stack)
        else:
            rates = None
        pods = list(stack.webhook_names)
        controllers = list(stack.controller_names)
    finally:
        progress("stopping the stack")
        stack.stop()
    _memory_figures(report, pods, controllers, (rss, pss), (after, after_pss))
    for name, seconds in sorted(sync.items()):
        report.add(
            Figure(
                NAME,
                f"cache sync {name}",
                seconds,
                "s",
                baseline=bare_list.get(name),
                baseline_name="bare lists of its kinds, every process's at once, one client",
                target=Target("ratio", "<=", SYNC_TARGET_RATIO),
            )
        )
    if rates is not None:
        ours, bare = rates
        report.add(
            Figure(
                NAME,
                f"pull-secret backlog, {args.serviceaccounts:,} SAs",
                ours,
                "SA/s",
                baseline=bare,
                baseline_name="bare writes, one client",
                target=Target("ratio", ">=", BACKLOG_TARGET_RATIO),
            )
        )
    peak = {k: max(rss.get(k, 0.0), after.get(k, 0.0)) for k in {**rss, **after}}
    report.series["rss_mib"] = [peak[k] for k in sorted(peak)]
    report.series["sync_seconds"] = [sync[k] for k in sorted(sync)]
    report.write()
    plots.bars(f"{NAME}-rss", "RSS per process after sync and backlog", peak, unit="MiB")
    synced = {name: seconds for name, seconds in sync.items() if math.isfinite(seconds)}
    plots.bars(f"{NAME}-sync", "Start to caches synced", synced, unit="s")
    if rates is not None:
        plots.bars(
            f"{NAME}-backlog",
            "Pull-secret backlog rate",
            {"controller": rates[0], "bare writes": rates[1]},
            unit="SA/s",
        )
    return report.figures


Memory = tuple[dict[str, float], dict[str, float]]
"""(RSS, PSS) of each process by label, in MiB; empty when not measured."""


def _memory_figures(
    report: Report, pods: list[str], controllers: list[str], synced: Memory, backlog: Memory
) -> None:
    """A webhook pod's total (PSS of master and workers: what its memory cgroup is charged,
    shared pages once; RSS summed beside it, counting them per process) and each
    controller's RSS, after sync and after the backlog."""
    for when, (rss, pss) in (("after sync", synced), ("after the backlog", backlog)):
        if not rss:
            continue
        for label, mib in sorted(rss.items()):
            progress(f"  RSS {label} {when}: {mib:.0f} MiB (PSS {pss.get(label, 0.0):.0f})")
        rss_totals, pss_totals = pod_totals(rss, pods), pod_totals(pss, pods)
        for pod in pods:
            report.add(
                Figure(
                    NAME,
                    f"{pod} pod PSS (master + workers) {when}; RSS summed "
                    f"{rss_totals[pod]:.0f} MiB",
                    pss_totals[pod],
                    "MiB",
                    target=Target("value", "<=", WEBHOOK_POD_RSS_TARGET_MIB),
                )
            )
        for name in controllers:
            if name in rss:
                report.add(
                    Figure(
                        NAME,
                        f"RSS {name} {when}",
                        rss[name],
                        "MiB",
                        target=Target("value", "<=", CONTROLLER_RSS_TARGET_MIB),
                    )
                )


def _backlog(stack: Stack, args: argparse.Namespace, report: Report) -> tuple[float, float]:
    """(our rate, bare rate) in SA/s, over ``rounds`` alternations."""
    per_round = max(1, args.serviceaccounts // args.rounds)
    namespaces = [namespace_name(i) for i in range(args.namespaces)]
    bare_namespaces = [f"scale-bare-{i:02d}" for i in range(BARE_NAMESPACES)]
    for ns in bare_namespaces:
        stack.kubectl("create", "namespace", ns)
        stack.kubectl("label", "namespace", ns, f"{OPT_OUT_KEY}={OPT_OUT_VALUE}")
    rounds = itertools.count()
    with _api(stack.kubeconfig) as api:
        core = client.CoreV1Api(api)
        secrets = metadata_list_func(api, "/api/v1/secrets")

        def ours() -> float:
            n = next(rounds)
            progress(f"backlog: {per_round:,} new SAs for the controller (round {n})")
            return controller_backlog(core, secrets, namespaces, per_round, f"new-{n}-")

        def bare() -> float:
            n = next(rounds)
            progress(f"bare writes: {per_round:,} SAs from one client (round {n})")
            return bare_writes(core, bare_namespaces, per_round, f"bare-{n}-", args.workers)

        ours_s, bare_s = alternate(args.rounds, ours, bare)
    report.series["backlog_seconds"] = ours_s
    report.series["bare_seconds"] = bare_s
    total = per_round * len(ours_s)
    rate_ours, rate_bare = total / sum(ours_s), per_round * len(bare_s) / sum(bare_s)
    progress(f"  controller {rate_ours:.1f} SA/s, bare writes {rate_bare:.1f} SA/s")
    return rate_ours, rate_bare
