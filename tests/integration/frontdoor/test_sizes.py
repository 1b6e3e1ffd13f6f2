"""What a push declares and uploads, against the real registry behind the front door: a
declared size is the size the registry holds, an image's size fits the Image API's
int64, uploads are bounded at the namespace's largest image and start only where a push
could follow, and a refused push leaves no stream, no charge and no manifest behind."""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import select
import socket
import ssl
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
import requests

from localcluster.crane import Crane
from localcluster.frontdoor import LocalFrontDoor
from localcluster.ocilayout import OCI_CONFIG, OCI_MANIFEST, random_layers, write_image
from quota.pushrecords import image_object_name
from tests.integration.support.cluster import CACHE_DEADLINE, ClusterEnv
from tests.integration.support.objects import image_limit, quota, used
from tests.integration.support.registry import Registry, Upstream, account, sha256, with_query

pytestmark = pytest.mark.local_only

MIB = 1024 * 1024
LAYER = "application/vnd.oci.image.layer.v1.tar"


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def upload(registry: Registry, repository: str, blob: bytes) -> requests.Response:
    """A monolithic upload: a session, then one PUT with the whole blob and its digest."""
    session = registry("POST", f"/v2/{repository}/blobs/uploads/")
    assert session.status_code == 202, session.text
    return registry(
        "PUT",
        with_query(session.headers["Location"], f"digest={sha256(blob)}"),
        data=blob,
        headers={"Content-Type": "application/octet-stream"},
    )


def manifest(config: bytes, *layers: tuple[bytes, int]) -> bytes:
    """An OCI image manifest naming ``config`` and each layer with the size given."""
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
        "layers": [
            {"mediaType": LAYER, "digest": sha256(blob), "size": size} for blob, size in layers
        ],
    }
    return json.dumps(document).encode()


def put_manifest(registry: Registry, repository: str, reference: str, body: bytes) -> Any:
    return registry(
        "PUT",
        f"/v2/{repository}/manifests/{reference}",
        data=body,
        headers={"Content-Type": OCI_MANIFEST},
    )


def streams(stack: ClusterEnv, namespace: str) -> str:
    return str(stack.kubectl("get", "imagestream", "-n", namespace, "-o", "name").stdout.strip())


def error(response: requests.Response) -> dict[str, Any]:
    errors: list[dict[str, Any]] = response.json()["errors"]
    assert len(errors) == 1, errors
    return errors[0]


SEND_BYTES = 16 * 1024
"""One write of a body sent by :func:`answer_while_sending`: small, so that an early answer
is noticed within a few writes, before the server gives up on the rest of the body."""


def answer_while_sending(
    door: LocalFrontDoor,
    token: str,
    method: str,
    path: str,
    body: Iterable[bytes],
    headers: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, Any], int]:
    """Send ``body``, reading the answer as soon as one comes, as Go's HTTP client (docker,
    crane) does: a server may answer before the body is all sent, and gunicorn drains only
    64 KiB of an unread body before it resets the connection. The body goes chunked unless
    ``headers`` give its Content-Length. Returns the status, the JSON answer and how many
    body bytes went out."""
    extra = dict(headers or {})
    chunked = "Content-Length" not in extra
    if chunked:
        extra["Transfer-Encoding"] = "chunked"
    context = ssl.create_default_context(cafile=str(door.ca_file))
    # TLS 1.3 sends session tickets after the handshake: the socket would look answered.
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    host, port = door.host.rsplit(":", 1)
    raw = socket.create_connection((host, int(port)), timeout=30)
    with context.wrap_socket(raw, server_hostname=host) as sock:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {door.host}"]
        lines += [f"Authorization: Bearer {token}", "Content-Type: application/octet-stream"]
        lines += [f"{name}: {value}" for name, value in extra.items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
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


def wait_for_the_1mi_limit(stack: ClusterEnv, registry: Registry, repository: str) -> None:
    """Until the front door bounds uploads at 1Mi: a one-byte chunk claiming to end past
    it is refused unsent (before, the registry answers 416, the session being empty)."""

    def refused() -> bool:
        session = registry("POST", f"/v2/{repository}/blobs/uploads/").headers["Location"]
        claim = {"Content-Type": "application/octet-stream", "Content-Range": f"{MIB}-{MIB}"}
        return registry("PATCH", session, data=b"x", headers=claim).status_code == 403

    stack.wait(refused, timeout=CACHE_DEADLINE, what="the front door to bound uploads at 1Mi")


CONFIG = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'


def test_a_layer_declared_smaller_than_it_is_is_refused_and_nothing_is_written(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor
) -> None:
    """The issue's push: a 3 MiB layer declared as 1000 bytes passed a 1Mi limit."""
    registry = Registry(door, account(stack, ns, "builder", "registry-editor"))
    layer = random_bytes(3 * MIB, seed=31)
    for blob in (CONFIG, layer):  # before the limit: no upload is bounded yet
        assert upload(registry, f"{ns}/app", blob).status_code == 201
    stack.apply(quota({"alauda.io/imagestreams": "5"}), "-n", ns)
    stack.apply(image_limit("1Mi"), "-n", ns)
    stack.wait(lambda: used(stack, ns) == "0", timeout=CACHE_DEADLINE, what="usage counted")
    honest = manifest(CONFIG, (layer, len(layer)))
    stack.wait(
        lambda: put_manifest(registry, f"{ns}/app", "v1", honest).status_code == 403,
        timeout=CACHE_DEADLINE,
        what="the front door to judge with the 1Mi limit",
    )
    lying = manifest(CONFIG, (layer, 1000))
    response = put_manifest(registry, f"{ns}/app", "v1", lying)
    assert response.status_code == 400, response.text
    assert error(response) == {
        "code": "MANIFEST_INVALID",
        "message": f"layers[0].size is 1000, but the registry holds {3 * MIB} bytes for"
        f" {sha256(layer)}",
    }
    assert streams(stack, ns) == ""
    image = stack.kubectl("get", "image", image_object_name(sha256(lying)), check=False)
    assert image.returncode != 0
    assert used(stack, ns) == "0"
    assert Upstream(door)("GET", f"/v2/{ns}/app/manifests/{sha256(lying)}").status_code == 404


def test_an_image_whose_size_overflows_int64_leaves_nothing_behind(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor
) -> None:
    """Two layers declared 2**63-1 each: each fits a descriptor, their sum no Image."""
    registry = Registry(door, account(stack, ns, "builder", "registry-editor"))
    layers = [random_bytes(100, seed=41), random_bytes(200, seed=42)]
    for blob in (CONFIG, *layers):
        assert upload(registry, f"{ns}/huge", blob).status_code == 201
    stack.apply(quota({"alauda.io/imagestreams": "5"}), "-n", ns)
    stack.wait(lambda: used(stack, ns) == "0", timeout=CACHE_DEADLINE, what="usage counted")
    body = manifest(CONFIG, *((blob, 2**63 - 1) for blob in layers))
    response = put_manifest(registry, f"{ns}/huge", "v1", body)
    assert response.status_code == 400, response.text
    assert error(response) == {
        "code": "MANIFEST_INVALID",
        "message": f"the image's size, config plus distinct layers, is"
        f" {len(CONFIG) + 2 * (2**63 - 1)} bytes: more than {2**63 - 1}, the most the Image"
        " API records (an int64)",
    }
    assert streams(stack, ns) == ""
    assert used(stack, ns) == "0"
    assert Upstream(door)("GET", f"/v2/{ns}/huge/manifests/{sha256(body)}").status_code == 404


def test_a_100_mib_upload_into_a_missing_repository_at_quota_is_refused(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor
) -> None:
    """The issue's upload: no ImageStream, the quota full, a 1Mi image limit."""
    stack.apply(quota({"alauda.io/imagestreams": "1"}), "-n", ns)
    stack.apply(image_limit("1Mi"), "-n", ns)
    stack.apply({"apiVersion": "image.alauda.io/v1", "kind": "ImageStream",
                 "metadata": {"name": "first"}}, "-n", ns)  # fmt: skip
    stack.wait(lambda: used(stack, ns) == "1", timeout=CACHE_DEADLINE, what="the quota full")
    token = account(stack, ns, "builder", "registry-editor")
    registry = Registry(door, token)
    chunk = bytes(MIB)
    digest = sha256(chunk * 100)
    stack.wait(
        lambda: registry("POST", f"/v2/{ns}/other/blobs/uploads/").status_code == 403,
        timeout=CACHE_DEADLINE,
        what="the front door to see the quota full",
    )
    # A monolithic upload in one POST (the spec's single-request form).
    status, answer, sent = answer_while_sending(
        door, token, "POST", f"/v2/{ns}/other/blobs/uploads/?digest={digest}",
        (chunk for _ in range(100)),
    )  # fmt: skip
    assert status == 403, answer
    assert answer["errors"] == [
        {
            "code": "DENIED",
            "message": "exceeded quota: images, requested: alauda.io/imagestreams=1, used:"
            " alauda.io/imagestreams=1, limited: alauda.io/imagestreams=1",
        }
    ]
    assert sent < 100 * MIB
    assert Upstream(door)("HEAD", f"/v2/{ns}/other/blobs/{digest}").status_code == 404
    assert streams(stack, ns) == "imagestream.image.alauda.io/first"
    # The repository the quota counts takes uploads: only new repositories need room.
    assert registry("POST", f"/v2/{ns}/first/blobs/uploads/").status_code == 202


def test_uploads_within_the_largest_image_pass_and_a_blob_past_it_is_cut(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor
) -> None:
    stack.apply(image_limit("1Mi"), "-n", ns)
    token = account(stack, ns, "builder", "registry-editor")
    registry = Registry(door, token)
    octets = {"Content-Type": "application/octet-stream"}

    wait_for_the_1mi_limit(stack, registry, f"{ns}/app")

    # Within the limit: monolithic, chunked with ranges, and chunked transfer encoding.
    whole = random_bytes(MIB, seed=51)
    assert upload(registry, f"{ns}/app", whole).status_code == 201
    parts = random_bytes(600 * 1024, seed=52)
    location = registry("POST", f"/v2/{ns}/app/blobs/uploads/").headers["Location"]
    for start, part in ((0, parts[:300_000]), (300_000, parts[300_000:])):
        ranged = {**octets, "Content-Range": f"{start}-{start + len(part) - 1}"}
        patched = registry("PATCH", location, data=part, headers=ranged)
        assert patched.status_code == 202, patched.text
        location = patched.headers["Location"]
    assert registry("PUT", with_query(location, f"digest={sha256(parts)}")).status_code == 201
    streamed = random_bytes(700 * 1024, seed=53)
    location = registry("POST", f"/v2/{ns}/app/blobs/uploads/").headers["Location"]
    pieces = (streamed[i : i + 65536] for i in range(0, len(streamed), 65536))
    patched = registry("PATCH", location, data=pieces, headers=octets)
    assert patched.status_code == 202, patched.text
    done = registry("PUT", with_query(patched.headers["Location"], f"digest={sha256(streamed)}"))
    assert done.status_code == 201, done.text
    for blob in (whole, parts, streamed):
        assert Upstream(door)("HEAD", f"/v2/{ns}/app/blobs/{sha256(blob)}").status_code == 200

    # Past it: a blob of 3 MiB sent chunked is cut while it streams ...
    big = random_bytes(3 * MIB, seed=54)
    location = registry("POST", f"/v2/{ns}/app/blobs/uploads/").headers["Location"]
    status, answer, _ = answer_while_sending(door, token, "PATCH", location, [big])
    assert status == 403, answer
    [cut] = answer["errors"]
    assert cut["code"] == "DENIED"
    assert cut["message"].startswith(
        'ImageStream "app" is forbidden: requested usage of storage exceeds the maximum limit'
        " per alauda.io/Image ("
    )
    assert cut["message"].endswith('> 1Mi) set by LimitRange "image-limits"')
    # ... a range that takes a session past it is refused unsent ...
    location = registry("POST", f"/v2/{ns}/app/blobs/uploads/").headers["Location"]
    ranged = {**octets, "Content-Range": "0-599999"}
    first = registry("PATCH", location, data=big[:600_000], headers=ranged)
    assert first.status_code == 202, first.text
    status, answer, _ = answer_while_sending(
        door, token, "PATCH", first.headers["Location"], [big[600_000:1_200_000]],
        {"Content-Range": "600000-1199999", "Content-Length": "600000"},
    )  # fmt: skip
    assert status == 403 and "(1200000 > 1Mi)" in answer["errors"][0]["message"], answer
    # ... and so is a monolithic PUT that declares its length.
    location = registry("POST", f"/v2/{ns}/app/blobs/uploads/").headers["Location"]
    status, answer, _ = answer_while_sending(
        door, token, "PUT", with_query(location, f"digest={sha256(big)}"), [big],
        {"Content-Length": str(len(big))},
    )  # fmt: skip
    assert status == 403 and "(3Mi > 1Mi)" in answer["errors"][0]["message"], answer
    assert Upstream(door)("HEAD", f"/v2/{ns}/app/blobs/{sha256(big)}").status_code == 404


def test_crane_pushing_a_layer_past_the_largest_image_prints_the_limit_and_stores_nothing(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, tmp_path: Path
) -> None:
    """A real client (Go's HTTP transport reads an early answer) prints the refusal of a
    layer cut while it uploads, and the registry never holds that layer."""
    stack.apply(image_limit("1Mi"), "-n", ns)
    token = account(stack, ns, "builder", "registry-editor")
    registry = Registry(door, token)
    wait_for_the_1mi_limit(stack, registry, f"{ns}/app")
    crane = Crane(door.ca_file, tmp_path / "home")
    crane.write_credentials(door.host, "serviceaccount", token)
    image = write_image(tmp_path / "image", random_layers([3 * MIB], seed=61))
    result = crane.push(tmp_path / "image", f"{door.host}/{ns}/app:v1")
    assert result.returncode != 0
    assert "DENIED" in result.stderr, result.stderr
    assert "requested usage of storage exceeds the maximum limit per alauda.io/Image" in (
        result.stderr
    )
    assert 'set by LimitRange "image-limits"' in result.stderr
    [layer] = image.layers
    assert Upstream(door)("HEAD", f"/v2/{ns}/app/blobs/{layer.digest}").status_code == 404


def test_a_content_range_past_an_int64_is_416_blob_upload_invalid_never_a_500(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor
) -> None:
    """The review's reproduction: a LimitRange, then a 1-byte chunk whose range starts at
    a 5,000-digit offset (Python parses at most 4,300)."""
    stack.apply(image_limit("1Mi"), "-n", ns)
    registry = Registry(door, account(stack, ns, "builder", "registry-editor"))
    wait_for_the_1mi_limit(stack, registry, f"{ns}/app")
    location = registry("POST", f"/v2/{ns}/app/blobs/uploads/").headers["Location"]
    claim = {"Content-Type": "application/octet-stream", "Content-Range": "1" * 5000 + "-1"}
    response = registry("PATCH", location, data=b"x", headers=claim)
    assert response.status_code == 416, response.text
    assert error(response)["code"] == "BLOB_UPLOAD_INVALID"
    assert "Traceback" not in response.text


def test_a_mount_of_a_blob_over_the_largest_image_is_a_bounded_upload_instead(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor
) -> None:
    """A blob uploaded before the 1Mi limit, mounted into another repository after it:
    the mount would link 2 MiB with no byte passing the upload bound."""
    registry = Registry(door, account(stack, ns, "builder", "registry-editor"))
    blob = random_bytes(2 * MIB, seed=61)
    assert upload(registry, f"{ns}/src", blob).status_code == 201
    stack.apply(image_limit("1Mi"), "-n", ns)
    wait_for_the_1mi_limit(stack, registry, f"{ns}/app")
    mount = f"/v2/{ns}/app/blobs/uploads/?mount={sha256(blob)}&from={ns}/src"
    response = registry("POST", mount)
    assert response.status_code == 202, response.text  # an upload session, not 201 mounted
    assert Upstream(door)("HEAD", f"/v2/{ns}/app/blobs/{sha256(blob)}").status_code == 404
    assert Upstream(door)("HEAD", f"/v2/{ns}/src/blobs/{sha256(blob)}").status_code == 200
