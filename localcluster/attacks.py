"""``python -m localcluster.attacks`` (``make attacks``): issue 17's reproductions (and
issue 20's delete rights, item 13), rerun against the running ``make dev`` stack, each
printed with what it sent, what came back and PASS or FAIL against the fixed behaviour.

It finds the stack through ``.local/dev.json`` (``localcluster.devstate``), makes its own
namespaces, limits, quotas and tokens (kubectl, TokenRequest), keeps every load on
loopback and bounded (the issue's counts), bounds each item in time, and deletes its
namespaces afterwards. Item 12 needs an API server restarted with a new signing key,
which ``make dev`` cannot do: tests/integration/test_pull_secret_key_rotation.py covers it.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import math
import random
import select
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from frontdoor.routes import MANIFEST_BODY_SECONDS
from frontdoor.upstream import READ_SECONDS as UPSTREAM_READ_SECONDS
from localcluster import devstate
from localcluster.crane import Crane
from localcluster.devstate import DevStack
from localcluster.ocilayout import (
    OCI_CONFIG,
    OCI_MANIFEST,
    random_layers,
    sha256_digest,
    write_image,
)
from localcluster.waiting import wait_for
from quota.pushrecords import image_object_name
from serving.callerreviews import UNKNOWN_TOKEN_BURST
from serving.httpjson import SMALL_BODY_BYTES
from serving.tlsserver import PROMPT_HEADER_SECONDS, slow_header_threads
from serving.tlsserver import READ_SECONDS as HEADER_SECONDS

AUDIENCE = "image-registry.alauda.io"
"""The registry audience (``--token-audiences``' default): pull secrets carry it."""
MIB = 1024 * 1024
HTTP_SECONDS = 30.0
"""One ordinary request on loopback."""
SOCKET_SECONDS = 10.0
"""One write or read of a raw socket on loopback."""
ITEM_SECONDS = 240.0
"""The most one item may take; past it the item FAILs and the next one runs."""
PROPAGATION_SECONDS = 30.0
"""For a write to reach the front door's and the controller's caches on a busy machine."""
PROMPT_SECONDS = UPSTREAM_READ_SECONDS / 10
"""A viewer behind cut uploads is answered within this (item 2): far below the upstream
read timeout a pinned thread waited out before the fix."""
TRUNCATED_PATCHES = 128
MADE_UP_TOKENS = 40
FRESH_TOKENS = 3
SLOW_MANIFESTS = 8
TRICKLERS = 140
"""The issue's counts (items 2, 5, 7, 8)."""
TRICKLE_SECONDS = 1.0
"""Item 8: one header byte a second, as in the issue."""
SLACK_SECONDS = 10.0
"""On top of a deadline: a busy 2-core machine's scheduling."""
SEND_BYTES = 16 * 1024
"""One write of a body sent while watching for an early answer."""
CONFIG = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
LAYER = "application/vnd.oci.image.layer.v1.tar"
ROTATION_TEST = "tests/integration/test_pull_secret_key_rotation.py"


class Failed(AssertionError):
    """An expectation of the fixed behaviour that did not hold."""


def short(text: str | bytes, limit: int = 240) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def with_query(location: str, query: str) -> str:
    return f"{location}{'&' if '?' in location else '?'}{query}"


def image_limit(storage: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "image-limits"},
        "spec": {"limits": [{"type": "alauda.io/Image", "max": {"storage": storage}}]},
    }


def quota(hard: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "images"},
        "spec": {"hard": hard},
    }


def manifest(config: bytes, *layers: tuple[bytes, int], padding: int = 0) -> bytes:
    """An OCI image manifest naming ``config`` and each layer with the size given."""
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(config), "size": len(config)},
        "layers": [
            {"mediaType": LAYER, "digest": sha256_digest(blob), "size": size}
            for blob, size in layers
        ],
    }
    if padding:
        document["annotations"] = {"padding": "x" * padding}
    return json.dumps(document).encode()


def errors_of(response: requests.Response) -> str:
    try:
        return short(json.dumps(response.json().get("errors")))
    except ValueError:
        return short(response.text)


@dataclass
class Registry:
    """Raw distribution-spec requests to ``base`` (the front door with a bearer token, or
    the registry behind it with none), trusting ``ca_file``."""

    base: str
    ca_file: str
    token: str | None = None
    session: requests.Session = field(default_factory=requests.Session)

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = path if path.startswith("http") else self.base + path
        headers = dict(kwargs.pop("headers", None) or {})
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        kwargs.setdefault("timeout", HTTP_SECONDS)
        return self.session.request(method, url, verify=self.ca_file, headers=headers, **kwargs)

    def upload(self, repository: str, blob: bytes) -> requests.Response:
        """A monolithic upload: a session, then one PUT with the whole blob and its digest."""
        started = self("POST", f"/v2/{repository}/blobs/uploads/")
        if started.status_code != 202:
            return started
        return self(
            "PUT",
            with_query(started.headers["Location"], f"digest={sha256_digest(blob)}"),
            data=blob,
            headers={"Content-Type": "application/octet-stream"},
        )


class Item:
    """One reproduction's printed record: what was sent, what came back, what held."""

    def __init__(self, number: int, title: str) -> None:
        self.number = number
        self.title = title
        self.lines: list[str] = []
        self.failures: list[str] = []
        self.lock = threading.Lock()

    def say(self, kind: str, text: str) -> None:
        line = f"  {kind:<6} {text}"
        with self.lock:
            self.lines.append(line)
        print(line, flush=True)

    def sent(self, text: str) -> None:
        self.say("sent", text)

    def got(self, text: str) -> None:
        self.say("got", text)

    def expect(self, holds: bool, what: str) -> None:
        """Record ``what`` (the fixed behaviour) as held or not; carry on either way."""
        self.say("ok" if holds else "FAILED", what)
        if not holds:
            self.failures.append(what)

    def require(self, holds: bool, what: str) -> None:
        """As :meth:`expect`, but the rest of the item makes no sense without it."""
        self.expect(holds, what)
        if not holds:
            raise Failed(what)


class Attacks:
    """The items, against one running dev stack; :meth:`cleanup` deletes what they made."""

    def __init__(self, dev: DevStack, work_dir: Path) -> None:
        self.dev = dev
        self.work_dir = work_dir
        self.namespaces: list[str] = []
        self.door_ca = dev.frontdoor_ca_file

    # --- the cluster ----------------------------------------------------------------------

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.dev.kubectl, f"--kubeconfig={self.dev.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise Failed(f"kubectl {' '.join(args)}: {short(result.stderr)}")
        return result

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def apply(self, manifest: dict[str, Any], namespace: str) -> None:
        self.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))

    def namespace(self, prefix: str) -> str:
        name = f"attack-{prefix}-{uuid.uuid4().hex[:6]}"
        self.kubectl("create", "namespace", name)
        self.namespaces.append(name)
        return name

    def account(self, namespace: str, name: str, role: str | None) -> str:
        """A ServiceAccount bound to ``role``; a registry-audience token of it. ``builder``
        may exist already: the controller makes one in every namespace."""
        made = self.kubectl("create", "serviceaccount", name, "-n", namespace, check=False)
        if made.returncode != 0 and "already exists" not in made.stderr:
            raise RuntimeError(f"kubectl create serviceaccount {name}: {made.stderr}")
        if role is not None:
            self.kubectl(
                "create", "rolebinding", f"{name}-{role}", f"--clusterrole={role}",
                f"--serviceaccount={namespace}:{name}", "-n", namespace,
            )  # fmt: skip
        return self.token(namespace, name)

    def token(self, namespace: str, name: str, seconds: int = 3600) -> str:
        token = self.kubectl(
            "create", "token", name, "-n", namespace, f"--audience={AUDIENCE}",
            f"--duration={seconds}s",
        )  # fmt: skip
        return token.stdout.strip()

    def used(self, namespace: str) -> str | None:
        obj = self.kubectl_json("get", "resourcequota", "images", "-n", namespace)
        value: str | None = (obj.get("status") or {}).get("used", {}).get("alauda.io/imagestreams")
        return value

    def streams(self, namespace: str) -> list[str]:
        out = self.kubectl("get", "imagestream", "-n", namespace, "-o", "name").stdout
        return out.split()

    def image_recorded(self, digest: str) -> bool:
        return self.kubectl("get", "image", image_object_name(digest), check=False).returncode == 0

    def wait(
        self, condition: Callable[[], Any], what: str, timeout: float = PROPAGATION_SECONDS
    ) -> Any:
        return wait_for(condition, timeout=timeout, what=what)

    def cleanup(self) -> None:
        for name in self.namespaces:
            self.kubectl("delete", "namespace", name, "--wait=false", check=False)
        self.namespaces.clear()

    # --- the registry ---------------------------------------------------------------------

    def door(self, token: str | None) -> Registry:
        return Registry(self.dev.frontdoor_url, self.door_ca, token)

    def upstream(self) -> Registry:
        """The registry behind the front door, asked directly (it trusts whoever reaches it)."""
        return Registry(self.dev.registry_url, self.dev.registry_ca_file)

    def crane(self, token: str) -> Crane:
        home = Path(tempfile.mkdtemp(dir=self.work_dir, prefix="crane-"))
        crane = Crane(Path(self.door_ca), home, binary=Path(self.dev.crane))
        crane.write_credentials(self.dev.frontdoor_host, "serviceaccount", token)
        return crane

    def image(self, *sizes: int, seed: int) -> tuple[Path, str]:
        """An OCI layout of one image with layers of these sizes; its manifest digest."""
        directory = self.work_dir / f"image-{seed}"
        image = write_image(directory, random_layers(sizes, seed=seed))
        return directory, image.digest

    def raw(self, head: bytes) -> ssl.SSLSocket:
        """A TLS connection to the front door that has sent ``head`` (and nothing more)."""
        context = ssl.create_default_context(cafile=self.door_ca)
        host, port = self.dev.frontdoor_host.rsplit(":", 1)
        connection = socket.create_connection((host, int(port)), timeout=SOCKET_SECONDS)
        tls = context.wrap_socket(connection, server_hostname=host)
        tls.sendall(head)
        return tls

    def head(self, method: str, path: str, token: str, **fields: str) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.dev.frontdoor_host}"]
        lines.append(f"Authorization: Bearer {token}")
        lines += [f"{name.replace('_', '-')}: {value}" for name, value in fields.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def raw_exchange(self, head: bytes, method: str) -> tuple[int, bytes]:
        """Send ``head`` as is (no client normalises its path) and read the answer."""
        with self.raw(head) as connection:
            response = http.client.HTTPResponse(connection, method=method)
            response.begin()
            return response.status, response.read()

    def answer_while_sending(
        self,
        token: str,
        method: str,
        path: str,
        body: Iterable[bytes],
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, Any], int]:
        """Send ``body`` (chunked unless ``headers`` give a Content-Length), reading the
        answer as soon as one comes, as Go's HTTP client does. Returns the status, the JSON
        answer and how many body bytes went out."""
        extra = dict(headers or {})
        chunked = "Content-Length" not in extra
        if chunked:
            extra["Transfer-Encoding"] = "chunked"
        context = ssl.create_default_context(cafile=self.door_ca)
        # TLS 1.3 sends session tickets after the handshake: the socket would look answered.
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        host, port = self.dev.frontdoor_host.rsplit(":", 1)
        connection = socket.create_connection((host, int(port)), timeout=HTTP_SECONDS)
        with context.wrap_socket(connection, server_hostname=host) as sock:
            head = self.head(method, path, token, Content_Type="application/octet-stream")
            head = head[:-2] + "".join(f"{k}: {v}\r\n" for k, v in extra.items()).encode()
            sock.sendall(head + b"\r\n")
            sent = 0

            def answered() -> bool:
                return sock.pending() > 0 or bool(select.select([sock], [], [], 0)[0])

            def send() -> None:
                nonlocal sent
                for chunk in body:
                    for start in range(0, len(chunk), SEND_BYTES):
                        if answered():
                            return
                        piece = chunk[start : start + SEND_BYTES]
                        sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                        sent += len(piece)
                if chunked:
                    sock.sendall(b"0\r\n\r\n")

            with contextlib.suppress(OSError):  # the server stopped reading: read its answer
                send()
            response = http.client.HTTPResponse(sock, method=method)
            response.begin()
            return response.status, json.loads(response.read() or b"{}"), sent

    # --- the items ------------------------------------------------------------------------

    def item1(self, item: Item) -> None:
        ns = self.namespace("1")
        self.apply(quota({"alauda.io/imagestreams": "0"}), ns)
        self.apply(image_limit("1Mi"), ns)
        self.wait(lambda: self.used(ns) == "0", "the quota counted")
        item.sent(f"namespace {ns}: ResourceQuota alauda.io/imagestreams=0 (full), Image limit 1Mi")
        repository = f"{ns}/sneak"
        layer = random.Random(17).randbytes(3 * MIB)
        body = manifest(CONFIG, (layer, len(layer)))
        digest = sha256_digest(body)
        upstream = self.upstream()
        # Through the front door these uploads are item 4's to refuse (no room for a new
        # repository); placed in the registry directly, they test the reads alone.
        for blob in (CONFIG, layer, body):
            done = upstream.upload(repository, blob)
            item.require(
                done.status_code == 201, f"blob stored in the registry: {done.status_code}"
            )
        item.sent(
            f"config, a 3 MiB layer and the manifest JSON {digest} as plain blobs into "
            f"{repository} (straight to the registry)"
        )
        viewer = self.door(self.account(ns, "reader", "registry-viewer"))
        blob_head = viewer("HEAD", f"/v2/{repository}/blobs/{digest}")
        item.sent(f"HEAD /v2/{repository}/blobs/{digest} (viewer) -> {blob_head.status_code}")
        accept = {"Accept": OCI_MANIFEST}
        read = viewer("GET", f"/v2/{repository}/manifests/{digest}", headers=accept)
        item.sent(f"GET /v2/{repository}/manifests/{digest} (viewer)")
        item.got(f"{read.status_code} {errors_of(read)}")
        item.expect(
            read.status_code == 404 and "MANIFEST_UNKNOWN" in read.text,
            "404 MANIFEST_UNKNOWN through the front door",
        )
        direct = upstream("GET", f"/v2/{repository}/manifests/{digest}", headers=accept)
        item.got(f"the registry itself: GET manifests/{digest} -> {direct.status_code}")
        item.expect(
            direct.status_code == 404,
            "the registry serves no manifest for a linked blob (no blob-descriptor cache)",
        )
        pulled = self.crane(viewer.token or "").pull(
            f"{self.dev.frontdoor_host}/{repository}@{digest}", self.work_dir / "item1-pull"
        )
        item.sent(f"crane pull {self.dev.frontdoor_host}/{repository}@{digest} (viewer)")
        item.got(f"exit {pulled.returncode}: {short(pulled.stderr)}")
        item.expect(pulled.returncode != 0, "the viewer's pull fails")
        item.expect(
            self.streams(ns) == [] and not self.image_recorded(digest), "no ImageStream, no Image"
        )

    def item2(self, item: Item) -> None:
        ns = self.namespace("2")
        token = self.account(ns, "builder", "registry-editor")
        builder = self.door(token)
        viewer = self.door(self.account(ns, "viewer", "registry-viewer"))
        blob = b"pulled while uploads are cut" * 1000
        item.require(
            builder.upload(f"{ns}/app", blob).status_code == 201, "a blob to pull uploaded"
        )
        threads = self.dev.frontdoor_workers * self.dev.frontdoor_threads
        sessions = [
            builder("POST", f"/v2/{ns}/app/blobs/uploads/") for _ in range(TRUNCATED_PATCHES)
        ]
        statuses = sorted({started.status_code for started in sessions})
        item.require(statuses == [202], f"{TRUNCATED_PATCHES} upload sessions: {statuses}")
        locations = [started.headers["Location"] for started in sessions]
        cut_at = time.monotonic()
        for location in locations:
            head = self.head(
                "PATCH",
                location,
                token,
                Content_Type="application/octet-stream",
                Content_Length="1000",
            )
            self.raw(head).close()
        item.sent(
            f"{TRUNCATED_PATCHES} PATCH {ns}/app uploads, Content-Length: 1000, no body, then "
            f"close (the front door has {threads} threads)"
        )
        asked = time.monotonic()
        try:
            pulled = viewer(
                "GET", f"/v2/{ns}/app/blobs/{sha256_digest(blob)}", timeout=PROMPT_SECONDS
            )
        except requests.Timeout:
            item.got(f"no answer within {PROMPT_SECONDS:.0f} s")
            item.expect(False, f"the viewer's pull answered within {PROMPT_SECONDS:.0f} s")
            return
        took = time.monotonic() - asked
        item.sent(
            f"GET /v2/{ns}/app/blobs/<digest> (viewer), {asked - cut_at:.1f} s after the first cut"
        )
        item.got(f"{pulled.status_code}, {len(pulled.content)} bytes in {took:.2f} s")
        item.expect(
            pulled.status_code == 200 and pulled.content == blob and took < PROMPT_SECONDS,
            f"the viewer's pull completes within {PROMPT_SECONDS:.0f} s (upstream read timeout "
            f"{UPSTREAM_READ_SECONDS:.0f} s)",
        )

    def item3(self, item: Item) -> None:
        ns = self.namespace("3")
        builder = self.door(self.account(ns, "builder", "registry-editor"))
        layer = random.Random(31).randbytes(3 * MIB)
        for blob in (CONFIG, layer):  # before the limit: no upload is bounded yet
            item.require(builder.upload(f"{ns}/app", blob).status_code == 201, "blob uploaded")
        self.apply(quota({"alauda.io/imagestreams": "5"}), ns)
        self.apply(image_limit("1Mi"), ns)
        self.wait(lambda: self.used(ns) == "0", "the quota counted")
        item.sent(f"config and a 3 MiB layer uploaded to {ns}/app, then an Image limit of 1Mi")
        honest = manifest(CONFIG, (layer, len(layer)))
        self.wait(
            lambda: (
                builder(
                    "PUT",
                    f"/v2/{ns}/app/manifests/v1",
                    data=honest,
                    headers={"Content-Type": OCI_MANIFEST},
                ).status_code
                == 403
            ),
            "the front door to judge with the 1Mi limit",
        )
        lying = manifest(CONFIG, (layer, 1000))
        answer = builder(
            "PUT", f"/v2/{ns}/app/manifests/v1", data=lying, headers={"Content-Type": OCI_MANIFEST}
        )
        item.sent(f'PUT /v2/{ns}/app/manifests/v1 declaring the layer "size": 1000')
        item.got(f"{answer.status_code} {errors_of(answer)}")
        item.expect(
            answer.status_code == 400 and "MANIFEST_INVALID" in answer.text,
            "refused: 400 MANIFEST_INVALID",
        )
        stored = self.upstream()("GET", f"/v2/{ns}/app/manifests/{sha256_digest(lying)}")
        item.got(
            f"streams {self.streams(ns)}, used {self.used(ns)}, registry manifest "
            f"{stored.status_code}"
        )
        item.expect(
            self.streams(ns) == [] and self.used(ns) == "0" and stored.status_code == 404,
            "no stream, no charge, no manifest",
        )

    def item4(self, item: Item) -> None:
        ns = self.namespace("4")
        self.apply(quota({"alauda.io/imagestreams": "1"}), ns)
        self.apply(image_limit("1Mi"), ns)
        self.apply(
            {
                "apiVersion": "image.alauda.io/v1",
                "kind": "ImageStream",
                "metadata": {"name": "first"},
            },
            ns,
        )
        self.wait(lambda: self.used(ns) == "1", "the quota full")
        token = self.account(ns, "builder", "registry-editor")
        builder = self.door(token)
        item.sent(
            f"namespace {ns}: ImageStream first, quota alauda.io/imagestreams=1 (full), Image "
            f"limit 1Mi"
        )
        self.wait(
            lambda: builder("POST", f"/v2/{ns}/other/blobs/uploads/").status_code == 403,
            "the front door to see the quota full",
        )
        chunk = bytes(MIB)
        digest = sha256_digest(chunk * 100)
        status, answer, sent = self.answer_while_sending(
            token,
            "POST",
            f"/v2/{ns}/other/blobs/uploads/?digest={digest}",
            (chunk for _ in range(100)),
        )
        item.sent(
            f"POST /v2/{ns}/other/blobs/uploads/?digest=... with a 100 MiB chunked body (a "
            f"repository with no stream)"
        )
        item.got(f"{status} {short(json.dumps(answer.get('errors')))} after {sent} body bytes")
        held = self.upstream()("HEAD", f"/v2/{ns}/other/blobs/{digest}").status_code
        item.expect(
            status == 403 and sent < 100 * MIB and held == 404,
            "refused before the 100 MiB went, nothing stored",
        )
        big = random.Random(54).randbytes(3 * MIB)
        location = builder("POST", f"/v2/{ns}/first/blobs/uploads/").headers.get("Location", "")
        status, answer, sent = self.answer_while_sending(token, "PATCH", location, [big])
        item.sent(f"PATCH a 3 MiB chunked blob into {ns}/first (the stream that exists)")
        item.got(f"{status} {short(json.dumps(answer.get('errors')))} after {sent} body bytes")
        held = self.upstream()("HEAD", f"/v2/{ns}/first/blobs/{sha256_digest(big)}").status_code
        item.expect(
            status == 403 and "exceeds the maximum limit" in json.dumps(answer) and held == 404,
            "the blob past the 1Mi limit is cut, not stored",
        )

    def item5(self, item: Item) -> None:
        ns = self.namespace("5")
        crane = self.crane(self.account(ns, "builder", "registry-editor"))
        directory, digest = self.image(1500, seed=5)
        pushed = crane.push(directory, f"{self.dev.frontdoor_host}/{ns}/app:v1")
        item.require(pushed.returncode == 0, f"crane push {ns}/app:v1: {short(pushed.stderr)}")
        reader = self.account(ns, "reader", "registry-viewer")
        fresh = [self.token(ns, "reader", 3600 + n) for n in range(FRESH_TOKENS)]
        url = f"/v2/{ns}/app/manifests/v1"
        statuses = []
        for token in self.made_up(reader, MADE_UP_TOKENS):
            statuses.append(self.door(token)("GET", url).status_code)
        item.sent(
            f"{MADE_UP_TOKENS} made-up tokens (garbage and JWTs signed here) GET {url} from "
            f"127.0.0.1"
        )
        item.got(f"statuses: {dict(sorted((s, statuses.count(s)) for s in set(statuses)))}")
        item.expect(
            429 in statuses and set(statuses) <= {401, 429},
            "made-up tokens get 401, then 429 past the address's burst",
        )
        answers = []
        for token in fresh:
            got = self.door(token)("GET", url, headers={"Accept": OCI_MANIFEST})
            answers.append((got.status_code, got.headers.get("Docker-Content-Digest")))
        item.sent(f"{FRESH_TOKENS} freshly minted TokenRequest tokens of {ns}/reader, right after")
        item.got(f"{answers}")
        item.expect(
            all(a == (200, digest) for a in answers), "each minted token pulls (200), never 429"
        )
        after = [
            self.door(t)("GET", url).status_code for t in self.made_up(reader, UNKNOWN_TOKEN_BURST)
        ]
        item.got(f"made-up tokens after them: {after}")
        item.expect(429 in after, "made-up tokens are still throttled")

    @staticmethod
    def made_up(real: str, count: int) -> list[str]:
        """Garbage, and JWTs shaped like the API server's but signed with a key made here."""
        header = jwt.get_unverified_header(real)
        claims = jwt.decode(real, options={"verify_signature": False})
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        tokens: list[str] = []
        for n in range(count):
            forged = {**claims, "sub": f"system:serviceaccount:x:forged-{n}", "jti": str(n)}
            kinds = (
                f"made-up-{n}",
                jwt.encode(forged, key, "RS256", headers={"kid": header["kid"]}),
                jwt.encode(forged, key, "RS256", headers={"kid": f"unknown-{n}"}),
            )
            tokens.append(kinds[n % 3])
        return tokens

    def item6(self, item: Item) -> None:
        ns = self.namespace("6")
        crane = self.crane(self.account(ns, "builder", "registry-editor"))
        directory, _ = self.image(1200, seed=6)
        ref = f"{self.dev.frontdoor_host}/{ns}/app"
        pushed = crane.push(directory, f"{ref}:v1")
        item.require(pushed.returncode == 0, f"crane push {ns}/app:v1: {short(pushed.stderr)}")
        upstream = self.upstream()

        def registry_tags() -> list[str] | None:
            answer = upstream("GET", f"/v2/{ns}/app/tags/list")
            return None if answer.status_code == 404 else list(answer.json().get("tags") or [])

        item.got(f"registry tags of {ns}/app: {registry_tags()}")
        self.kubectl("delete", "imagestream", "app", "-n", ns)
        item.sent(f"kubectl delete imagestream app -n {ns}")
        listed = crane.run("ls", ref)
        item.sent(f"crane ls {ref}")
        item.got(f"exit {listed.returncode}: {short(listed.stdout + listed.stderr)}")
        item.expect(
            listed.returncode != 0 and "v1" not in listed.stdout,
            "tags/list through the front door lists no v1",
        )
        served = crane.digest(f"{ref}:v1")
        item.got(f"crane digest {ref}:v1 -> exit {served.returncode}: {short(served.stderr)}")
        item.expect(served.returncode != 0, "app:v1 is no longer served")
        with contextlib.suppress(TimeoutError):
            self.wait(lambda: not registry_tags(), "the registry to lose the deleted stream's tag")
        item.got(f"registry tags of {ns}/app afterwards: {registry_tags()}")
        item.expect(not registry_tags(), "the registry itself no longer has the tag")

    def item13(self, item: Item) -> None:
        ns, elsewhere = self.namespace("13"), self.namespace("13x")
        crane = self.crane(self.account(ns, "builder", "registry-editor"))
        directory, digest = self.image(900, seed=13)
        ref = f"{self.dev.frontdoor_host}/{ns}/app"
        pushed = crane.push(directory, f"{ref}:v1")
        item.require(pushed.returncode == 0, f"crane push {ns}/app:v1: {short(pushed.stderr)}")
        callers = {
            "no credentials": (self.door(None), 401),
            "a stranger (another namespace's account)": (
                self.door(self.account(elsewhere, "stranger", None)),
                403,
            ),
            "a viewer (registry-viewer)": (
                self.door(self.account(ns, "reader", "registry-viewer")),
                403,
            ),
        }
        for path in (f"/v2/{ns}/app/manifests/v1", f"/v2/{ns}/app/manifests/{digest}"):
            for who, (door, status) in callers.items():
                answer = door("DELETE", path)
                item.sent(f"DELETE {path} as {who}")
                item.got(f"{answer.status_code} {errors_of(answer)}")
                item.expect(answer.status_code == status, f"refused: {status}")
        recorded = self.kubectl_json("get", "imagestream", "app", "-n", ns)
        tags = [t.get("tag") for t in (recorded.get("status") or {}).get("tags") or []]
        item.got(f"tags of {ns}/app afterwards: {tags}; Image kept: {self.image_recorded(digest)}")
        item.expect(tags == ["v1"] and self.image_recorded(digest), "nothing was deleted")
        deleted = crane.run("delete", f"{ref}:v1")
        item.sent(f"crane delete {ref}:v1 as the editor (registry-editor)")
        item.got(f"exit {deleted.returncode}: {short(deleted.stderr)}")
        item.expect(
            deleted.returncode == 0 and not self.image_recorded(digest),
            "the editor deletes it: the tag and its Image go",
        )

    def item7(self, item: Item) -> None:
        attacker, victim = self.namespace("7a"), self.namespace("7v")
        token = self.account(attacker, "builder", "registry-editor")
        builder = self.door(self.account(victim, "builder", "registry-editor"))
        config = json.dumps({"os": "linux", "architecture": "amd64"}).encode()
        layer = b"layer of a large manifest" * 100
        for blob in (config, layer):
            item.require(builder.upload(f"{victim}/app", blob).status_code == 201, "blob uploaded")
        body = manifest(config, (layer, len(layer)), padding=2 * SMALL_BODY_BYTES)
        head = self.head(
            "PUT",
            f"/v2/{attacker}/app/manifests/v1",
            token,
            Content_Type=OCI_MANIFEST,
            Content_Length="100000",
        )
        slow = [self.raw(head + b"{") for _ in range(SLOW_MANIFESTS)]
        sent_at = time.monotonic()
        item.sent(
            f"{SLOW_MANIFESTS} PUT /v2/{attacker}/app/manifests/v1, Content-Length: 100000, one "
            f"byte sent"
        )
        try:
            pushed = builder(
                "PUT",
                f"/v2/{victim}/app/manifests/v1",
                data=body,
                headers={"Content-Type": OCI_MANIFEST},
            )
            took = time.monotonic() - sent_at
            item.sent(
                f"PUT /v2/{victim}/app/manifests/v1, a {len(body)}-byte manifest (over "
                f"{SMALL_BODY_BYTES})"
            )
            item.got(
                f"{pushed.status_code} in {took:.2f} s "
                f"{errors_of(pushed) if pushed.status_code >= 400 else ''}"
            )
            item.expect(
                pushed.status_code == 201,
                "the other namespace's large manifest is accepted (201, not 503)",
            )
            deadline = sent_at + MANIFEST_BODY_SECONDS + SLACK_SECONDS
            answers = [answer_of(connection, deadline) for connection in slow]
            waited = time.monotonic() - sent_at
            firsts = sorted({a.split(b"\r\n", 1)[0].decode("latin-1") for a in answers})
            item.got(f"the slow PUTs, within {waited:.1f} s: {firsts}")
            body_of_one = answers[0].split(b"\r\n\r\n", 1)[-1] if answers else b""
            item.got(f"one of them: {short(body_of_one)}")
            item.expect(
                all(a.startswith(b"HTTP/1.1 400 ") and b"not sent in time" in a for a in answers),
                f"the slow bodies are cut (400 SIZE_INVALID) within {MANIFEST_BODY_SECONDS:.0f} s "
                f"+ slack",
            )
        finally:
            for connection in slow:
                connection.close()

    def item8(self, item: Item) -> None:
        ns = self.namespace("8")
        viewer = self.door(self.account(ns, "viewer", "registry-viewer"))
        workers, threads = self.dev.frontdoor_workers, self.dev.frontdoor_threads
        allowed = workers * slow_header_threads(threads)
        rounds = math.ceil(max(0, TRICKLERS - allowed) / (workers * threads - allowed))
        bound = rounds * PROMPT_HEADER_SECONDS + SLACK_SECONDS / 2
        stop = threading.Event()
        connected: list[int] = []
        closed: list[int] = []
        tricklers = [
            threading.Thread(target=self.trickle, args=(stop, connected, closed), daemon=True)
            for _ in range(TRICKLERS)
        ]
        try:
            for trickler in tricklers:
                trickler.start()
            time.sleep(2 * TRICKLE_SECONDS)  # every trickler connected and trickling
            item.sent(
                f"{TRICKLERS} connections trickling a header byte every {TRICKLE_SECONDS:.0f} s "
                f"({workers}x{threads} threads): {len(connected)} connected, "
                f"{len(connected) - len(closed)} still trickling"
            )
            asked = time.monotonic()
            try:
                answer = viewer("GET", "/v2/", timeout=bound)
            except requests.RequestException as err:
                item.got(f"{type(err).__name__} after {time.monotonic() - asked:.1f} s")
                item.expect(False, f"a viewer's GET /v2/ answered within {bound:.0f} s")
                return
            took = time.monotonic() - asked
            item.sent("GET /v2/ (viewer)")
            item.got(
                f"{answer.status_code} in {took:.2f} s, with {len(connected) - len(closed)} "
                "tricklers still open"
            )
            item.expect(
                answer.status_code == 200 and took < bound,
                f"answered within {bound:.0f} s (before the fix: 8-10 s; header limit "
                f"{HEADER_SECONDS:.0f} s)",
            )
        finally:
            stop.set()
            for trickler in tricklers:
                trickler.join(SOCKET_SECONDS)

    def trickle(self, stop: threading.Event, connected: list[int], closed: list[int]) -> None:
        """A request head sent a byte at a time until the front door answers or closes it,
        or ``stop``; appends to ``connected`` once connected, to ``closed`` once the front
        door answered or closed (lists: append is atomic)."""
        try:
            connection = self.raw(b"GET /v2/ HTTP/1.1\r\n")
        except OSError:
            closed.append(1)
            return
        connected.append(1)
        try:
            for byte in b"X-Slow: " + b"a" * 1000:
                if stop.is_set():
                    return
                connection.sendall(bytes([byte]))
                connection.settimeout(TRICKLE_SECONDS)
                try:
                    connection.recv(65536)  # an answer (408) or the end: either way, done
                except TimeoutError:
                    continue
                closed.append(1)
                return
        except OSError:  # reset, broken pipe, TLS alert: closed all the same
            closed.append(1)
        finally:
            connection.close()

    def item9(self, item: Item) -> None:
        ns = self.namespace("9")
        builder = self.door(self.account(ns, "builder", "registry-editor"))
        layers = [random.Random(41).randbytes(100), random.Random(42).randbytes(200)]
        for blob in (CONFIG, *layers):
            item.require(builder.upload(f"{ns}/huge", blob).status_code == 201, "blob uploaded")
        self.apply(quota({"alauda.io/imagestreams": "5"}), ns)
        self.wait(lambda: self.used(ns) == "0", "the quota counted")
        body = manifest(CONFIG, *((blob, 2**63 - 1) for blob in layers))
        answer = builder(
            "PUT", f"/v2/{ns}/huge/manifests/v1", data=body, headers={"Content-Type": OCI_MANIFEST}
        )
        item.sent(f"PUT /v2/{ns}/huge/manifests/v1 with two layers declared 2**63-1 bytes each")
        item.got(f"{answer.status_code} {errors_of(answer)}")
        item.expect(answer.status_code in (400, 403), "refused")
        stored = self.upstream()("GET", f"/v2/{ns}/huge/manifests/{sha256_digest(body)}")
        pulled = builder(
            "GET",
            f"/v2/{ns}/huge/manifests/{sha256_digest(body)}",
            headers={"Accept": OCI_MANIFEST},
        )
        item.got(
            f"streams {self.streams(ns)}, used {self.used(ns)}, registry manifest "
            f"{stored.status_code}, through the front door {pulled.status_code}"
        )
        item.expect(
            self.streams(ns) == []
            and self.used(ns) == "0"
            and stored.status_code == 404
            and pulled.status_code == 404,
            "nothing left: no stream, no charge, no manifest",
        )

    def item10(self, item: Item) -> None:
        ns = self.namespace("10")
        token = self.account(ns, "builder", "registry-editor")
        started = self.door(token)("POST", f"/v2/{ns}/app/blobs/uploads/")
        item.require(started.status_code == 202, "an upload session")
        for upload in (".", ".."):
            for method in ("PATCH", "PUT", "GET"):
                path = f"/v2/{ns}/app/blobs/uploads/{upload}"
                fields = (
                    {"Content_Type": "application/octet-stream", "Content_Length": "1"}
                    if method != "GET"
                    else {}
                )
                head = self.head(method, path, token, **fields)
                status, body = self.raw_exchange(head + (b"x" if fields else b""), method)
                item.sent(f"{method} {path} (raw, unnormalised)")
                item.got(f"{status} {short(body)}")
                item.expect(
                    status == 404 and b"BLOB_UPLOAD_UNKNOWN" in body,
                    "refused: 404 BLOB_UPLOAD_UNKNOWN, nothing forwarded",
                )

    def item11(self, item: Item) -> None:
        ns = self.namespace("11")
        self.kubectl(
            "create", "secret", "generic", "squatter-dockercfg", "-n", ns, "--from-literal=k=v"
        )
        self.kubectl("create", "serviceaccount", "squatter", "-n", ns)
        item.sent(f"Opaque Secret {ns}/squatter-dockercfg, then ServiceAccount squatter")

        def named() -> dict[str, Any] | None:
            sa = self.kubectl_json("get", "serviceaccount", "squatter", "-n", ns)
            names = [e.get("name") for e in sa.get("imagePullSecrets") or []]
            for name in names:
                secret = self.kubectl_json("get", "secret", name, "-n", ns)
                if secret.get("type") == "kubernetes.io/dockerconfigjson":
                    return dict(secret)
            return None

        try:
            secret: dict[str, Any] = self.wait(named, "a working pull secret named by the SA")
        except TimeoutError:
            sa = self.kubectl_json("get", "serviceaccount", "squatter", "-n", ns)
            item.got(f"imagePullSecrets {sa.get('imagePullSecrets')}")
            item.expect(False, "the SA names a kubernetes.io/dockerconfigjson Secret")
            return
        name = secret["metadata"]["name"]
        auths = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))["auths"]
        item.got(f"imagePullSecrets names {name} (type {secret['type']}, hosts {sorted(auths)})")
        item.expect(name.startswith("squatter-dockercfg-"), "a fallback name, not the squatted one")
        squatter = self.kubectl_json("get", "secret", "squatter-dockercfg", "-n", ns)
        item.expect(
            squatter.get("type") == "Opaque" and "k" in (squatter.get("data") or {}),
            "the squatter's Secret untouched",
        )
        entry = auths.get(self.dev.frontdoor_host)
        item.require(
            entry is not None, f"the secret holds credentials for {self.dev.frontdoor_host}"
        )
        password = (
            entry.get("password") or base64.b64decode(entry["auth"]).decode().split(":", 1)[1]
        )
        answer = self.door(password)("GET", "/v2/")
        item.sent("GET /v2/ on the front door with the secret's token")
        item.got(f"{answer.status_code}")
        item.expect(answer.status_code == 200, "the secret's token works at the front door")


def answer_of(connection: ssl.SSLSocket, deadline: float) -> bytes:
    """What the front door sends on ``connection`` until it closes it (or ``deadline``)."""
    answer = b""
    while time.monotonic() < deadline:
        connection.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            data = connection.recv(65536)
        except TimeoutError:
            break
        except OSError:
            return answer
        if not data:
            return answer
        answer += data
    return answer


ITEMS: dict[int, str] = {
    1: "a manifest uploaded as a blob is not served",
    2: "truncated PATCHes do not pin threads",
    3: "a layer declared smaller than it is is refused",
    4: "uploads into a missing repository at quota are refused; past the limit, cut",
    5: "made-up tokens from one address do not lock out minted tokens",
    6: "a deleted ImageStream's tags leave the registry and tags/list",
    7: "slow large manifests of one namespace leave another's accepted",
    8: "header tricklers leave a viewer a prompt answer",
    9: "an int64-overflowing size sum leaves nothing behind",
    10: "upload ids . and .. are refused",
    11: "a squatted <sa>-dockercfg: the SA gets a working fallback secret",
    12: "tokens follow a rotation of the signing key",
    13: "no credentials, a stranger or a viewer cannot delete through the front door",
}


def run_item(attacks: Attacks, number: int) -> str:
    item = Item(number, ITEMS[number])
    print(f"\n== item {number}: {item.title}", flush=True)
    if number == 12:
        item.say(
            "skip",
            f"needs an API server restarted with a new signing key, which make dev cannot do; "
            f"covered by {ROTATION_TEST}",
        )
        return "SKIP"
    errors: list[BaseException] = []

    def body() -> None:
        try:
            getattr(attacks, f"item{number}")(item)
        except BaseException as err:  # reported as the item's failure
            errors.append(err)

    started = time.monotonic()
    worker = threading.Thread(target=body, daemon=True)
    worker.start()
    worker.join(ITEM_SECONDS)
    if worker.is_alive():
        item.expect(False, f"finished within {ITEM_SECONDS:.0f} s")
    for err in errors:
        if not isinstance(err, Failed):
            item.expect(False, f"ran without error: {type(err).__name__}: {short(str(err))}")
    result = "FAIL" if item.failures else "PASS"
    print(f"  => item {number}: {result} ({time.monotonic() - started:.1f} s)", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localcluster.attacks", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("items", nargs="*", type=int, help="item numbers (default: all)")
    parser.add_argument(
        "--state", type=Path, default=devstate.DEFAULT_PATH, help="the dev stack's state file"
    )
    args = parser.parse_args(argv)
    numbers: list[int] = args.items or sorted(ITEMS)
    if unknown := [n for n in numbers if n not in ITEMS]:
        parser.error(f"no item {unknown}")
    try:
        dev = devstate.read(args.state)
    except FileNotFoundError:
        print(f"no dev stack: {args.state} is missing (start `make dev` first)", file=sys.stderr)
        return 2
    print(
        f"front door {dev.frontdoor_host} (CA {dev.frontdoor_ca_file}), registry "
        f"{dev.registry_url}, kubeconfig {dev.kubeconfig}"
    )
    results: dict[int, str] = {}
    with tempfile.TemporaryDirectory(prefix="attacks-") as work:
        attacks = Attacks(dev, Path(work))
        try:
            for number in numbers:
                results[number] = run_item(attacks, number)
        finally:
            attacks.cleanup()
    print("\nsummary:")
    for number, result in results.items():
        print(f"  {number:>2} {result:<4} {ITEMS[number]}")
    return 1 if "FAIL" in results.values() else 0


if __name__ == "__main__":
    sys.exit(main())
