"""Requests that never arrive whole, through the real front door before the real CNCF
registry: a client cannot pin the front door's threads by cutting or trickling a body or
its headers (issue 17, items 2, 7 and 8)."""

from __future__ import annotations

import json
import math
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from frontdoor.routes import MANIFEST_BODY_SECONDS
from frontdoor.upstream import READ_SECONDS
from localcluster.frontdoor import LocalFrontDoor
from localcluster.metrics import metric_sum
from localcluster.ocilayout import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST
from serving.httpjson import SMALL_BODY_BYTES
from serving.tlsserver import PROMPT_HEADER_SECONDS, slow_header_threads
from serving.tlsserver import READ_SECONDS as HEADER_SECONDS
from tests.integration.support.cluster import ClusterEnv
from tests.integration.support.registry import Registry, account, frontdoor_stack, sha256

pytestmark = pytest.mark.local_only

THREADS = 16
"""The front door's threads in this module's stack (one worker): few, so that pinning
them all is cheap; enough for the requests each test sends while it pins some."""
PROMPT_SECONDS = READ_SECONDS / 10
"""A request behind the hostile ones must be answered within this: far below the
upstream read timeout (300 s) a pinned thread waited out before."""
SOCKET_SECONDS = 10.0
"""For one write or read of a raw test socket on loopback."""
SLOW_MANIFESTS = 8
"""The issue's attack: eight PUTs that announce 100,000 bytes and send one (fewer than
the threads, so that what is measured is the large-manifest gate, not thread use)."""
SLACK_SECONDS = 10.0
"""On top of a deadline: a busy 2-core machine's scheduling."""


@pytest.fixture(scope="module")
def stack() -> Iterator[ClusterEnv]:
    """This module's own stack (overriding the package's): hostile clients pin threads."""
    with frontdoor_stack(f"--threads={THREADS}") as env:
        yield env


def namespace(stack: ClusterEnv) -> str:
    name = f"b-{uuid.uuid4().hex[:10]}"
    stack.kubectl("create", "namespace", name)
    return name


def raw_request(door: LocalFrontDoor, head: bytes) -> ssl.SSLSocket:
    """A TLS connection to the front door that has sent ``head`` (and nothing more)."""
    context = ssl.create_default_context(cafile=str(door.ca_file))
    raw = socket.create_connection(("127.0.0.1", door.port), timeout=SOCKET_SECONDS)
    tls = context.wrap_socket(raw, server_hostname="127.0.0.1")
    tls.sendall(head)
    return tls


def request_head(method: str, path: str, door: LocalFrontDoor, token: str, **fields: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {door.host}", f"Authorization: Bearer {token}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in fields.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def sample(door: LocalFrontDoor, name: str, **labels: str) -> float:
    return metric_sum([requests.get(door.metrics_url, timeout=SOCKET_SECONDS).text], name, **labels)


def test_truncated_uploads_free_their_threads_at_once(
    stack: ClusterEnv, door: LocalFrontDoor
) -> None:
    """Twice as many PATCHes as the front door has threads announce 1000 bytes, send none
    and close (what a Ctrl-C during a push does): each registry request is cut with its
    body, so a viewer's pull right after them is answered promptly, not after the
    registry read timeout."""
    ns = namespace(stack)
    token = account(stack, ns, "builder", "registry-editor")
    builder = Registry(door, token)
    viewer = Registry(door, account(stack, ns, "viewer", "registry-viewer"))
    blob = b"pulled while uploads are cut" * 1000
    started = builder("POST", f"/v2/{ns}/app/blobs/uploads/")
    done = builder("PUT", f"{started.headers['Location']}&digest={sha256(blob)}", data=blob)
    assert done.status_code == 201, done.text
    metric = "registry_v2_policy_frontdoor_bodies_incomplete_total"
    cut_before = sample(door, metric, route="upload", how="cut")

    for _ in range(2 * THREADS):
        location = builder("POST", f"/v2/{ns}/app/blobs/uploads/").headers["Location"]
        head = request_head(
            "PATCH", location, door, token,
            Content_Type="application/octet-stream", Content_Length="1000",
        )  # fmt: skip
        raw_request(door, head).close()

    asked = time.monotonic()
    try:
        pulled = viewer.session.get(
            f"{door.url}/v2/{ns}/app/blobs/{sha256(blob)}",
            verify=viewer.ca_file,
            timeout=PROMPT_SECONDS,
        )
    except requests.Timeout:
        pytest.fail(f"a viewer's pull waited over {PROMPT_SECONDS} s behind truncated uploads")
    assert pulled.status_code == 200 and pulled.content == blob
    assert time.monotonic() - asked < PROMPT_SECONDS
    stack.wait(
        lambda: sample(door, metric, route="upload", how="cut") >= cut_before + 2 * THREADS,
        timeout=PROMPT_SECONDS,
        what="every truncated upload counted as cut",
    )


def upload(registry: Registry, ns: str, data: bytes) -> dict[str, object]:
    started = registry("POST", f"/v2/{ns}/app/blobs/uploads/")
    done = registry("PUT", f"{started.headers['Location']}&digest={sha256(data)}", data=data)
    assert done.status_code == 201, done.text
    return {"digest": sha256(data), "size": len(data)}


def answer_of(connection: ssl.SSLSocket, deadline: float) -> bytes:
    """What the front door sends on ``connection`` until it closes it (or ``deadline``)."""
    answer = b""
    while time.monotonic() < deadline:
        connection.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            data = connection.recv(65536)
        except TimeoutError:
            break
        except OSError:  # reset, TLS alert: closed all the same
            return answer
        if not data:
            return answer
        answer += data
    raise AssertionError(f"still open after the deadline; answered {answer[:200]!r}")


def test_slow_large_manifests_of_one_namespace_leave_another_its_large_manifest(
    stack: ClusterEnv, door: LocalFrontDoor
) -> None:
    """Issue 17, item 7: manifest PUTs from one namespace that announce 100,000 bytes and
    send one held every large-manifest slot for the whole 600 s body limit, and every
    other namespace's manifest over 16 KiB got 503. A slot is now taken by the bytes
    received, and the slow bodies are cut after MANIFEST_BODY_SECONDS."""
    attacker, victim = namespace(stack), namespace(stack)
    token = account(stack, attacker, "builder", "registry-editor")
    builder = Registry(door, account(stack, victim, "builder", "registry-editor"))
    config = upload(builder, victim, json.dumps({"os": "linux", "architecture": "amd64"}).encode())
    layer = upload(builder, victim, b"layer of a large manifest" * 100)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, **config},
            "layers": [{"mediaType": OCI_LAYER, **layer}],
            "annotations": {"padding": "x" * 2 * SMALL_BODY_BYTES},
        }
    ).encode()
    assert len(manifest) > SMALL_BODY_BYTES  # it needs a large-manifest slot

    head = request_head(
        "PUT", f"/v2/{attacker}/app/manifests/v1", door, token,
        Content_Type=OCI_MANIFEST, Content_Length="100000",
    )  # fmt: skip
    slow = [raw_request(door, head + b"{") for _ in range(SLOW_MANIFESTS)]
    sent = time.monotonic()
    try:
        pushed = builder(
            "PUT",
            f"/v2/{victim}/app/manifests/v1",
            data=manifest,
            headers={"Content-Type": OCI_MANIFEST},
        )
        assert pushed.status_code == 201, pushed.text
        assert pushed.headers["Docker-Content-Digest"] == sha256(manifest)
        # The slow bodies are cut on the manifest's own deadline, not the body limit.
        deadline = sent + MANIFEST_BODY_SECONDS + SLACK_SECONDS
        for connection in slow:
            answer = answer_of(connection, deadline)
            assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
            assert b"SIZE_INVALID" in answer and b"not sent in time" in answer, answer
    finally:
        for connection in slow:
            connection.close()


TRICKLERS = 2 * THREADS
"""Connections trickling their headers: every thread, and as many more queued."""
TRICKLE_SECONDS = 0.5
"""A header byte this often: never silent long enough to look idle."""


class Trickler(threading.Thread):
    """Sends a request head a byte at a time until the front door closes the connection."""

    def __init__(self, door: LocalFrontDoor) -> None:
        super().__init__(daemon=True)
        self.door = door
        self.connected = threading.Event()
        self.stop = threading.Event()
        self.closed = threading.Event()

    def run(self) -> None:
        connection = raw_request(self.door, b"GET /v2/ HTTP/1.1\r\n")
        self.connected.set()
        try:
            for byte in b"X-Slow: " + b"a" * 1000:
                if self.stop.is_set():
                    return
                connection.sendall(bytes([byte]))
                connection.settimeout(TRICKLE_SECONDS)
                try:
                    if not connection.recv(65536):
                        return
                except TimeoutError:
                    continue
        except OSError:  # reset, broken pipe, TLS alert: closed all the same
            return
        finally:
            self.closed.set()
            connection.close()


def test_a_crowd_of_slow_headers_leaves_a_viewer_a_prompt_answer(
    stack: ClusterEnv, door: LocalFrontDoor
) -> None:
    """Issue 17, item 8: 140 connections trickling a header byte a second made a viewer's
    request take 8-10 s. Half the threads wait the full header limit; the crowd behind
    them gets a second each, so the viewer waits a second per reserved thread."""
    ns = namespace(stack)
    viewer = Registry(door, account(stack, ns, "viewer", "registry-viewer"))
    allowed = slow_header_threads(THREADS)
    bound = math.ceil((TRICKLERS - allowed) / (THREADS - allowed)) * PROMPT_HEADER_SECONDS
    bound += SLACK_SECONDS / 2
    assert bound < HEADER_SECONDS  # what a viewer behind them waited before
    tricklers = [Trickler(door) for _ in range(TRICKLERS)]
    try:
        for trickler in tricklers:
            trickler.start()
            assert trickler.connected.wait(SOCKET_SECONDS)
        asked = time.monotonic()
        try:
            answer = viewer.session.get(f"{door.url}/v2/", verify=viewer.ca_file, timeout=bound)
        except requests.Timeout:
            pytest.fail(f"a viewer waited more than {bound} s behind slow headers")
        assert answer.status_code == 200, answer.text
        assert time.monotonic() - asked < bound
    finally:
        for trickler in tricklers:
            trickler.stop.set()
