"""What ``prune images`` is told, and the Go duration syntax of ``--keep-younger-than``
(``oc adm prune images`` and ImagePruner's ``keepYoungerThanDuration`` take Go's
``time.ParseDuration`` form, so the CronJob passes the user's value through unchanged).
Free of Flask and prometheus_client: the command reads its defaults while it builds its
parser."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Final

from controller.imageprune.plan import DEFAULT_KEEP_TAG_REVISIONS, Policy

DEFAULT_KEEP_YOUNGER_THAN_TEXT: Final = "60m"
"""``--keep-younger-than``'s default as the user writes it (``plan.DEFAULT_KEEP_YOUNGER_THAN``)."""
DEFAULT_WRITE_DRAIN_SECONDS: Final = 30.0 + 10.0 + 600.0 + 305.0
"""The longest a write the front door took just before ``readOnly`` was set can still be
reaching the registry: its watch learning the change after a broken watch's longest
relist backoff (30 s, ``kube.informer.Informer``'s ``max_backoff_seconds``), plus one
request's headers (10 s, ``serving.tlsserver.READ_SECONDS``), its body (600 s,
``frontdoor.main.UPLOAD_WAIT_SECONDS``) and the registry's answer (5 s connect, 300 s
read: ``frontdoor.upstream``). A unit test adds them up again, so it follows them."""
DEFAULT_REGISTRY_BINARY: Final = "registry"
"""distribution's binary, found on PATH (the registry image has it there)."""
_GO_UNIT_NANOSECONDS: Final = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
"""Go's ``time.ParseDuration`` units (src/time/format.go ``unitMap``), in nanoseconds."""
MAX_GO_DURATION_TEXT: Final = "2562047h47m16.854775807s"
MAX_GO_DURATION_NANOSECONDS: Final = 2**63 - 1
"""Go's longest duration (``time.Duration`` is an int64 of nanoseconds: ``maxDuration`` in
src/time/time.go); ``time.ParseDuration`` refuses more, and so does this parser."""
_GO_DURATION: Final = re.compile(
    r"^[+]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+$"
)
_GO_TERM: Final = re.compile(r"([0-9]*\.?[0-9]*)(ns|us|µs|μs|ms|s|m|h)")
_EXACT_DIGITS: Final = 200
"""Decimal digits for the sum: more than any term of a 64-character value can have, so
no rounding happens before the comparison with the maximum."""


def parse_go_duration(text: str) -> timedelta:
    """``1h30m``, ``90m``, ``0``: Go's duration syntax, never negative (an age), never
    longer than Go's longest (``MAX_GO_DURATION_TEXT``). Summed exactly in nanoseconds,
    as Go sums it, each term's fraction truncated to whole nanoseconds."""
    value = text.strip()
    if value in ("0", "+0"):
        return timedelta(0)
    if not _GO_DURATION.fullmatch(value):
        raise ValueError(
            f"expected a Go duration such as 60m, 1h30m or 24h (units ns, us, ms, s, m, h); "
            f"got {text!r}"
        )
    with localcontext() as exact:
        exact.prec = _EXACT_DIGITS
        nanoseconds = sum(
            int(Decimal(number) * _GO_UNIT_NANOSECONDS[unit])
            for number, unit in _GO_TERM.findall(value)
        )
    if nanoseconds > MAX_GO_DURATION_NANOSECONDS:
        raise ValueError(
            f"{text!r} is longer than Go's longest duration, {MAX_GO_DURATION_TEXT} "
            "(about 292 years)"
        )
    return timedelta(microseconds=nanoseconds // 1_000)


@dataclass(frozen=True)
class UpstreamRegistry:
    url: str
    ca_file: Path | None


@dataclass(frozen=True)
class PruneConfig:
    policy: Policy
    confirm: bool = False
    ignore_invalid_refs: bool = False
    internal_hostnames: tuple[str, ...] = ()
    """The registry's own names: a workload's reference by tag on one of them (or a route
    of ``configs/cluster``) is resolved to the stream's image."""
    upstream: UpstreamRegistry | None = None
    """Where manifests are deleted; None: they are left for the next run that has one."""
    prune_registry: bool = False
    registry_config: Path | None = None
    registry_binary: str = DEFAULT_REGISTRY_BINARY
    write_drain_seconds: float = DEFAULT_WRITE_DRAIN_SECONDS
    kubeconfig: str | None = None


__all__ = ["DEFAULT_KEEP_TAG_REVISIONS", "PruneConfig", "UpstreamRegistry", "parse_go_duration"]
