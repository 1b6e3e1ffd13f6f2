"""The upstream registry client over real HTTP on loopback: pages followed by their Link,
a tag deleted by its name, and every odd answer a retryable error, never a guess."""

from __future__ import annotations

import gzip
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from controller.registrytags import registry
from controller.registrytags.registry import (
    MAX_ANSWER_BYTES,
    PAGE_SIZE,
    RegistryUnavailable,
    UpstreamRegistry,
)


class Fake:
    """What the handler answers: path (with query) -> (status, body, headers)."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, bytes, dict[str, str]]] = {}
        self.seen: list[tuple[str, str]] = []
        self.url = ""


def serve(fake: Fake) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            fake.seen.append((self.command, self.path))
            status, body, headers = fake.answers.get(self.path, (404, b"{}", {}))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_DELETE = _answer

        def log_message(self, *args: Any) -> None: ...

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@pytest.fixture
def fake() -> Iterator[Fake]:
    state = Fake()
    server = serve(state)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def client(fake: Fake) -> UpstreamRegistry:
    return UpstreamRegistry(fake.url)


def page(key: str, names: list[str] | None) -> bytes:
    return json.dumps({key: names}).encode()


def test_the_catalog_is_read_page_by_page_through_the_link_header(fake: Fake) -> None:
    first = f"/v2/_catalog?n={PAGE_SIZE}"
    second = f"/v2/_catalog?last=a%2Fy&n={PAGE_SIZE}"
    fake.answers[first] = (
        200,
        page("repositories", ["a/x", "a/y"]),
        {"Link": f'<{second}>; rel="next"'},
    )
    fake.answers[second] = (200, page("repositories", ["b/z"]), {})
    assert list(client(fake).repositories()) == ["a/x", "a/y", "b/z"]


def test_an_absolute_next_page_on_the_registrys_own_origin_is_followed(fake: Fake) -> None:
    first = f"/v2/_catalog?n={PAGE_SIZE}"
    url = fake.url
    fake.answers[first] = (
        200,
        page("repositories", ["a/x"]),
        {"Link": f'<{url}/v2/_catalog?last=a%2Fx>; rel="next"'},
    )
    fake.answers["/v2/_catalog?last=a%2Fx"] = (200, page("repositories", ["a/y"]), {})
    assert list(client(fake).repositories()) == ["a/x", "a/y"]


def test_a_next_page_on_another_host_is_refused(fake: Fake) -> None:
    first = f"/v2/_catalog?n={PAGE_SIZE}"
    fake.answers[first] = (
        200,
        page("repositories", ["a/x"]),
        {"Link": '<https://evil.example/v2/_catalog>; rel="next"'},
    )
    with pytest.raises(RegistryUnavailable, match="another host"):
        list(client(fake).repositories())


def test_tags_of_a_repository_and_none_for_an_unknown_one(fake: Fake) -> None:
    fake.answers[f"/v2/team-a/app/tags/list?n={PAGE_SIZE}"] = (200, page("tags", ["v1", "v2"]), {})
    fake.answers[f"/v2/team-a/empty/tags/list?n={PAGE_SIZE}"] = (200, page("tags", None), {})
    assert client(fake).tags("team-a/app") == ["v1", "v2"]
    assert client(fake).tags("team-a/empty") == []
    assert client(fake).tags("team-a/unknown") == []  # 404 NAME_UNKNOWN


def test_a_repositorys_tags_are_read_page_by_page_through_the_link_header(fake: Fake) -> None:
    first = f"/v2/team-a/app/tags/list?n={PAGE_SIZE}"
    second = f"/v2/team-a/app/tags/list?last=v2&n={PAGE_SIZE}"
    fake.answers[first] = (200, page("tags", ["v1", "v2"]), {"Link": f'<{second}>; rel="next"'})
    fake.answers[second] = (200, page("tags", ["v3"]), {})
    assert client(fake).tags("team-a/app") == ["v1", "v2", "v3"]


@pytest.mark.parametrize("status", [200, 202])
def test_a_delete_answered_ok_or_accepted_is_a_deletion(fake: Fake, status: int) -> None:
    fake.answers["/v2/team-a/app/manifests/v1"] = (status, b"", {})
    assert client(fake).delete_tag("team-a/app", "v1") is True


def test_a_tag_is_deleted_by_its_name_and_a_missing_one_is_no_error(fake: Fake) -> None:
    fake.answers["/v2/team-a/app/manifests/v1"] = (202, b"", {})
    assert client(fake).delete_tag("team-a/app", "v1") is True
    assert client(fake).delete_tag("team-a/app", "gone") is False
    assert fake.seen == [
        ("DELETE", "/v2/team-a/app/manifests/v1"),
        ("DELETE", "/v2/team-a/app/manifests/gone"),
    ]


def test_deletes_turned_off_in_the_registry_are_an_error_that_says_so(fake: Fake) -> None:
    unsupported = b'{"errors":[{"code":"UNSUPPORTED"}]}'
    fake.answers["/v2/team-a/app/manifests/v1"] = (405, unsupported, {})
    with pytest.raises(RegistryUnavailable, match=r"HTTP 405.*UNSUPPORTED"):
        client(fake).delete_tag("team-a/app", "v1")


def test_a_manifest_is_deleted_by_its_digest_and_a_missing_one_is_no_error(fake: Fake) -> None:
    digest = "sha256:" + "a" * 64
    fake.answers[f"/v2/team-a/app/manifests/{digest}"] = (202, b"", {})
    assert client(fake).delete_manifest("team-a/app", digest) is True
    assert client(fake).delete_manifest("team-a/app", "sha256:" + "b" * 64) is False
    assert fake.seen[0] == ("DELETE", f"/v2/team-a/app/manifests/{digest}")


def test_a_manifest_delete_refused_is_an_error_that_says_so(fake: Fake) -> None:
    digest = "sha256:" + "a" * 64
    unsupported = b'{"errors":[{"code":"UNSUPPORTED"}]}'
    fake.answers[f"/v2/team-a/app/manifests/{digest}"] = (405, unsupported, {})
    with pytest.raises(RegistryUnavailable, match=r"HTTP 405.*UNSUPPORTED"):
        client(fake).delete_manifest("team-a/app", digest)


@pytest.mark.parametrize(
    ("status", "body", "said"),
    [
        (500, b"oops", "HTTP 500"),
        (200, b"not json", "not JSON"),
        (200, b"[]", "not a JSON object"),
        (200, b'{"tags": "v1"}', "not a list"),
        (200, b"x" * (MAX_ANSWER_BYTES + 1), "over"),
    ],
)
def test_an_odd_answer_is_a_retryable_error(
    fake: Fake, status: int, body: bytes, said: str
) -> None:
    fake.answers[f"/v2/team-a/app/tags/list?n={PAGE_SIZE}"] = (status, body, {})
    with pytest.raises(RegistryUnavailable, match=said):
        client(fake).tags("team-a/app")


def test_an_unreachable_registry_is_a_retryable_error() -> None:
    with pytest.raises(RegistryUnavailable, match="GET /v2/team-a/app/tags/list"):
        UpstreamRegistry("http://127.0.0.1:1").tags("team-a/app")


@pytest.mark.parametrize("url", ["ftp://x", "registry:5000", "https://"])
def test_only_an_http_base_url_is_taken(url: str) -> None:
    with pytest.raises(ValueError, match="http"):
        UpstreamRegistry(url)


def test_an_unreachable_registry_is_named_by_the_error_that_failed_at_once() -> None:
    """No retries: the first refused connection is the answer, and its kind is said."""
    with pytest.raises(RegistryUnavailable) as caught:
        UpstreamRegistry("http://127.0.0.1:1").tags("team-a/app")
    assert str(caught.value) == f"GET /v2/team-a/app/tags/list?n={PAGE_SIZE}: NewConnectionError"


def test_an_error_answer_quotes_at_most_200_bytes_of_its_body(fake: Fake) -> None:
    path = f"/v2/team-a/app/tags/list?n={PAGE_SIZE}"
    fake.answers[path] = (500, b"x" * 300, {})
    with pytest.raises(RegistryUnavailable) as caught:
        client(fake).tags("team-a/app")
    assert str(caught.value) == f"GET {path}: HTTP 500 {b'x' * 200!r}"


def test_an_answer_of_exactly_the_most_bytes_is_read(fake: Fake) -> None:
    body = page("tags", ["v1"])
    fake.answers[f"/v2/team-a/app/tags/list?n={PAGE_SIZE}"] = (
        200,
        body + b" " * (MAX_ANSWER_BYTES - len(body)),
        {},
    )
    assert client(fake).tags("team-a/app") == ["v1"]


def test_a_gzipped_answer_is_decoded(fake: Fake) -> None:
    fake.answers[f"/v2/team-a/app/tags/list?n={PAGE_SIZE}"] = (
        200,
        gzip.compress(page("tags", ["v1"])),
        {"Content-Encoding": "gzip"},
    )
    assert client(fake).tags("team-a/app") == ["v1"]


def test_a_redirect_is_an_error_not_followed(fake: Fake) -> None:
    fake.answers[f"/v2/team-a/app/tags/list?n={PAGE_SIZE}"] = (307, b"", {"Location": "/moved"})
    fake.answers["/moved"] = (200, page("tags", ["v1"]), {})
    with pytest.raises(RegistryUnavailable, match="HTTP 307"):
        client(fake).tags("team-a/app")
    assert [path for _, path in fake.seen] == [f"/v2/team-a/app/tags/list?n={PAGE_SIZE}"]


def test_a_catalog_longer_than_the_most_pages_is_an_error_that_says_so(
    fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "MAX_PAGES", 2)
    first = f"/v2/_catalog?n={PAGE_SIZE}"
    fake.answers[first] = (200, page("repositories", ["a"]), {"Link": f'<{first}>; rel="next"'})
    with pytest.raises(RegistryUnavailable) as caught:
        list(client(fake).repositories())
    assert str(caught.value) == f"more than 2 pages from {first}"


def test_a_registry_that_stalls_is_given_up_after_the_read_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(registry, "READ_SECONDS", 0.2)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    given_up = threading.Event()

    def stall() -> None:
        connection, _ = listener.accept()
        given_up.wait(STALL_SECONDS)  # then hang up, so a client without timeout fails too
        connection.close()

    threading.Thread(target=stall, daemon=True).start()
    try:
        slow = UpstreamRegistry(f"http://127.0.0.1:{listener.getsockname()[1]}")
        with pytest.raises(RegistryUnavailable, match="ReadTimeoutError"):
            slow.tags("team-a/app")
    finally:
        given_up.set()
        listener.close()


STALL_SECONDS = 5.0
"""How long the stalled registry holds a request: far past the 0.2 s read timeout."""


def test_an_answer_cut_short_is_named_by_the_error_that_cut_it() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def cut_short() -> None:
        connection, _ = listener.accept()
        connection.recv(65536)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        connection.close()

    threading.Thread(target=cut_short, daemon=True).start()
    try:
        short = UpstreamRegistry(f"http://127.0.0.1:{listener.getsockname()[1]}")
        with pytest.raises(RegistryUnavailable) as caught:
            short.tags("team-a/app")
    finally:
        listener.close()
    assert str(caught.value) == f"GET /v2/team-a/app/tags/list?n={PAGE_SIZE}: ProtocolError"


def test_an_answer_over_the_most_bytes_is_refused_without_reading_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The registry still owes bytes (and stalls): the answer is refused once one byte
    past the bound has come, never after reading it all."""
    monkeypatch.setattr(registry, "READ_SECONDS", 1.0)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    given_up = threading.Event()

    def overlong() -> None:
        connection, _ = listener.accept()
        connection.recv(65536)
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {MAX_ANSWER_BYTES + 10}\r\n\r\n"
        connection.sendall(head.encode() + b"x" * (MAX_ANSWER_BYTES + 1))
        given_up.wait(STALL_SECONDS)
        connection.close()

    threading.Thread(target=overlong, daemon=True).start()
    try:
        big = UpstreamRegistry(f"http://127.0.0.1:{listener.getsockname()[1]}")
        with pytest.raises(RegistryUnavailable, match=f"over {MAX_ANSWER_BYTES} bytes"):
            big.tags("team-a/app")
    finally:
        given_up.set()
        listener.close()


def test_the_registrys_own_ca_is_trusted_and_a_connection_waits_bounded(
    tmp_path: Path,
) -> None:
    """As the front door's upstream pool: the configured CA, else the system's; and a
    registry that never answers a connection holds the reconciler ``CONNECT_SECONDS``."""
    ca = tmp_path / "ca.crt"
    kw = UpstreamRegistry("https://r:5000", ca_file=ca)._pool.connection_pool_kw
    assert kw["ca_certs"] == str(ca)
    assert kw["timeout"].connect_timeout == registry.CONNECT_SECONDS
    assert UpstreamRegistry("https://r:5000")._pool.connection_pool_kw["ca_certs"] is None
