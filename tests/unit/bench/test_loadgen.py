"""The pure parts of the load generator's wrapper: its flags and its report."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from bench.loadgen import Target, Tls, attack_args, parse_report


def test_target_line_carries_body_and_headers_as_vegeta_reads_them() -> None:
    line = json.loads(
        Target("https://h/p", b'{"a":1}', {"Authorization": "Bearer t"}).as_vegeta_json()
    )
    assert base64.b64decode(line["body"]) == b'{"a":1}'
    assert line["header"] == {"Content-Type": ["application/json"], "Authorization": ["Bearer t"]}
    assert line["method"] == "POST"


def test_saturation_runs_one_worker_per_connection() -> None:
    args = attack_args(Path("t"), Tls(Path("ca")), rate=0, seconds=3, connections=16)
    assert "-rate=0" in args
    assert "-workers=16" in args and "-max-workers=16" in args
    assert "-max-connections=16" in args and "-keepalive=true" in args


def test_fixed_rate_and_client_certificate() -> None:
    args = attack_args(
        Path("t"), Tls(Path("ca"), Path("c"), Path("k")), rate=500, seconds=2, connections=4
    )
    assert "-rate=500/1s" in args
    assert "-cert=c" in args and "-key=k" in args and "-root-certs=ca" in args


def test_report_in_milliseconds() -> None:
    result = parse_report(
        {
            "requests": 10,
            "throughput": 9.5,
            "success": 1,
            "latencies": {"50th": 1_500_000, "99th": 4_000_000},
            "status_codes": {"200": 10},
            "errors": [],
        }
    )
    assert (result.p50_ms, result.p99_ms, result.requests) == (1.5, 4.0, 10)
