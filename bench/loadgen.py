"""vegeta, the Go load generator of the capacity benchmark: keep-alive TLS connections, a
fixed offered rate or as fast as the server answers, and its own JSON report.

A Python client saturates before our server does on 2 cores, so the load comes from the
pinned, cached build of ``hack/vegeta`` (``make loadgen``).
"""

from __future__ import annotations

import base64
import functools
import json
import os
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcluster.binaries import REPO_ROOT

BUILD_SCRIPT = REPO_ROOT / "hack" / "build-vegeta.sh"
CONNECTIONS = 16
"""Keep-alive connections: the issue's client (16), and below the API server's idle
webhook pool (25), so no connection waits idle for a thread of ours."""
REQUEST_TIMEOUT_SECONDS = 10
"""The longest webhook timeout we register (``webhook.registration``): a slower answer
is a failure to the API server too."""
NANOSECONDS_PER_MS = 1e6


@functools.cache
def vegeta_binary() -> Path:
    """The vegeta binary, built on first use; ``BENCH_VEGETA`` points at another one."""
    override = os.environ.get("BENCH_VEGETA")
    if override:
        return Path(override)
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True
    )
    return Path(result.stdout.strip().splitlines()[-1]) / "bin" / "vegeta"


@dataclass(frozen=True)
class Target:
    """One request, sent again and again."""

    url: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    def as_vegeta_json(self) -> str:
        """One line of vegeta's JSON target format (body base64, headers as lists)."""
        return json.dumps(
            {
                "method": "POST",
                "url": self.url,
                "body": base64.b64encode(self.body).decode(),
                "header": {"Content-Type": ["application/json"]}
                | {k: [v] for k, v in self.headers.items()},
            }
        )


@dataclass(frozen=True)
class Tls:
    """The CA that verifies the server, and a client certificate to present (the API
    server's webhook client certificate: admission routes insist on it)."""

    root_ca: Path
    cert: Path | None = None
    key: Path | None = None


@dataclass(frozen=True)
class Result:
    """What one attack measured (latencies in milliseconds)."""

    requests: int
    throughput: float
    """Successful responses per second of the attack's whole duration."""
    p50_ms: float
    p99_ms: float
    success: float
    status_codes: Mapping[str, int]
    errors: tuple[str, ...]


def parse_report(report: Mapping[str, Any]) -> Result:
    """vegeta's ``report -type=json`` document, in our units."""
    latencies = report["latencies"]
    return Result(
        requests=int(report["requests"]),
        throughput=float(report["throughput"]),
        p50_ms=latencies["50th"] / NANOSECONDS_PER_MS,
        p99_ms=latencies["99th"] / NANOSECONDS_PER_MS,
        success=float(report["success"]),
        status_codes=dict(report.get("status_codes") or {}),
        errors=tuple(report.get("errors") or ()),
    )


def attack_args(
    target_file: Path, tls: Tls, *, rate: int, seconds: float, connections: int
) -> list[str]:
    """``vegeta attack`` flags: ``rate`` requests/s offered, or 0 for as fast as the
    server answers on ``connections`` connections (one worker each, so none waits for a
    connection)."""
    args = [
        "attack",
        "-format=json",
        f"-targets={target_file}",
        f"-duration={seconds}s",
        f"-timeout={REQUEST_TIMEOUT_SECONDS}s",
        "-keepalive=true",
        "-http2=false",
        f"-connections={connections}",
        f"-max-connections={connections}",
        f"-root-certs={tls.root_ca}",
    ]
    if tls.cert and tls.key:
        args += [f"-cert={tls.cert}", f"-key={tls.key}"]
    if rate:
        args += [f"-rate={rate}/1s", f"-max-workers={connections * 4}"]
    else:
        args += ["-rate=0", f"-workers={connections}", f"-max-workers={connections}"]
    return args


def attack(
    target: Target, tls: Tls, *, rate: int, seconds: float, connections: int = CONNECTIONS
) -> Result:
    """Send ``target`` at ``rate`` requests/s (0: saturation) for ``seconds``."""
    vegeta = str(vegeta_binary())
    with tempfile.TemporaryDirectory(prefix="vegeta-") as tmp:
        targets = Path(tmp) / "targets.json"
        targets.write_text(target.as_vegeta_json() + "\n")
        results = Path(tmp) / "results.bin"
        with results.open("wb") as out:
            subprocess.run(
                [
                    vegeta,
                    *attack_args(targets, tls, rate=rate, seconds=seconds, connections=connections),
                ],
                check=True,
                stdout=out,
                stdin=subprocess.DEVNULL,
            )
        report = subprocess.run(
            [vegeta, "report", "-type=json", str(results)],
            check=True,
            capture_output=True,
            text=True,
        )
    return parse_report(json.loads(report.stdout))
