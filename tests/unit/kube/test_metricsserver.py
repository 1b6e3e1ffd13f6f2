"""The plain-HTTP metrics listener of every process."""

from __future__ import annotations

import urllib.request

from kube.metricsserver import serve_metrics


def test_metrics_are_served_over_plain_http_on_the_given_address() -> None:
    listener = serve_metrics("127.0.0.1:0")
    assert listener is not None
    try:
        host, port = listener.address
        assert host == "127.0.0.1" and port > 0
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/plain")
            assert b"python_info" in r.read()
    finally:
        listener.close()


def test_zero_turns_the_listener_off() -> None:
    assert serve_metrics("0") is None
