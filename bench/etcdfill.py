"""Fill the test control plane with custom resources straight through etcd's v3 JSON gateway.

Through the API server a 2-core machine creates about 50 ImageStreams a second (a create
and a status write each): 50,000 streams and 100,000 Images would take 40 minutes before
the benchmark measures anything. kube-apiserver stores a custom resource as its JSON
under ``/registry/<group>/<resource>/[<namespace>/]<name>``, and its watch cache follows
etcd, so objects put there are what a client lists, exactly as if created: the API
server sets ``resourceVersion`` from etcd's revision when it reads them. What the API
server would have set on a create (uid, creationTimestamp, generation) is set here.

Only for the benchmark's throwaway control plane: nothing here validates or admits, so
the caller checks, through the API, that every object is listed before measuring
(``wait_listed``). Core kinds are stored as protobuf and still go through the API.
"""

from __future__ import annotations

import base64
import concurrent.futures
import itertools
import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

import requests

from quota.objects import Obj

ETCD_PREFIX: Final = "/registry"
"""kube-apiserver's default ``--etcd-prefix`` (localcluster does not change it)."""
TXN_OPS: Final = 100
"""Puts per transaction: below etcd's default ``--max-txn-ops`` of 128, and at ~6 KB an
ImageStream, well below its 1.5 MiB ``--max-request-bytes``."""
THREADS: Final = 4
"""Concurrent transactions: enough to keep etcd busy while the next batch is encoded."""
REQUEST_TIMEOUT: Final = 60.0
"""Seconds per transaction; etcd with ``--unsafe-no-fsync`` commits one in milliseconds."""
CREATED: Final = "2026-11-28T09:00:00Z"
"""creationTimestamp of every filled object (the samples' own)."""
SERVER_SET: Final = ("resourceVersion",)
"""Fields the API server derives on read from etcd's revision: never stored."""


def etcd_url(apiserver_argv: Iterable[str]) -> str:
    """The etcd client URL a kube-apiserver was started with (``--etcd-servers``)."""
    for arg in apiserver_argv:
        if arg.startswith("--etcd-servers="):
            return arg.split("=", 1)[1].split(",")[0]
    raise ValueError("kube-apiserver was started without --etcd-servers")


def storage_key(group: str, resource: str, obj: Obj) -> str:
    """Where kube-apiserver keeps ``obj`` of ``resource``.``group`` in etcd."""
    metadata = obj["metadata"]
    namespace = metadata.get("namespace")
    parts = [ETCD_PREFIX, group, resource, *([namespace] if namespace else []), metadata["name"]]
    return "/".join(parts)


def stored(obj: Obj) -> Obj:
    """``obj`` as the API server would have stored it on a create: a uid (derived from
    its key, so a refill gives the same), creationTimestamp and generation set, no
    resourceVersion."""
    metadata = {k: v for k, v in obj["metadata"].items() if k not in SERVER_SET}
    name = f"{metadata.get('namespace', '')}/{metadata['name']}"
    metadata.setdefault("uid", str(uuid.uuid5(uuid.NAMESPACE_URL, name)))
    metadata.setdefault("creationTimestamp", CREATED)
    metadata.setdefault("generation", 1)
    return {**obj, "metadata": metadata}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def txn_body(group: str, resource: str, objects: Iterable[Obj]) -> dict[str, Any]:
    """One etcd v3 transaction (JSON gateway form) putting every object, unconditionally."""
    return {
        "success": [
            {
                "requestPut": {
                    "key": _b64(storage_key(group, resource, obj)),
                    "value": _b64(json.dumps(stored(obj), separators=(",", ":"))),
                }
            }
            for obj in objects
        ]
    }


def _batches(items: Iterable[int], size: int) -> Iterator[list[int]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def put_all(
    url: str,
    group: str,
    resource: str,
    make: Callable[[int], Obj],
    count: int,
    progress: Callable[[int], None] = lambda done: None,
) -> None:
    """Put objects ``make(0) .. make(count - 1)`` into etcd, ``TXN_OPS`` per transaction."""
    session = requests.Session()

    def put(batch: list[int]) -> int:
        body = txn_body(group, resource, (make(i) for i in batch))
        response = session.post(f"{url}/v3/kv/txn", json=body, timeout=REQUEST_TIMEOUT)
        response.raise_for_status()
        answer = response.json()
        if not answer.get("succeeded"):
            raise RuntimeError(f"etcd refused a transaction of {resource}: {answer}")
        return len(batch)

    done = 0
    with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
        for n in pool.map(put, _batches(range(count), TXN_OPS)):
            done += n
            progress(done)
