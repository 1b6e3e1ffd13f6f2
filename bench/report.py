"""What every benchmark reports: figures as ratios to a baseline measured in the same run.

These machines are noisy (2 shared cores), so an absolute figure alone says little; a
figure next to its baseline, measured alternately in the same run, says how much we cost.
Each benchmark returns :class:`Figure` objects and may keep raw samples in a
:class:`Report`, which writes ``bench/results/<name>.json`` and, where matplotlib is
installed, ``bench/results/<name>-*.png``.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from bench.machine import describe

RESULTS = Path(__file__).resolve().parent / "results"


def progress(message: str) -> None:
    """One line on stderr, so a long run shows where it is without mixing into the table."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(samples: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100) by linear interpolation, as numpy's default."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Target:
    """A bound on a figure: on its ratio to the baseline, or on its value itself."""

    on: Literal["ratio", "value"]
    op: Literal["<=", ">=", "<"]
    bound: float

    def met(self, figure: Figure) -> bool | None:
        subject = figure.ratio if self.on == "ratio" else figure.value
        if subject is None or math.isnan(subject):
            return None
        if self.op == "<=":
            return subject <= self.bound
        if self.op == "<":
            return subject < self.bound
        return subject >= self.bound

    def __str__(self) -> str:
        return f"{'ratio' if self.on == 'ratio' else 'value'} {self.op} {self.bound:g}"


@dataclass(frozen=True)
class Figure:
    benchmark: str
    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str | None = None
    target: Target | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        return self.target.met(self) if self.target else None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["target"] = str(self.target) if self.target else None
        data["ratio"] = self.ratio
        data["met"] = self.met
        return data


def alternate(
    rounds: int, subject: Callable[[], float], baseline: Callable[[], float]
) -> tuple[list[float], list[float]]:
    """Samples of ``subject`` and ``baseline`` taken in turn, the order swapped every round,
    so drift in the machine's load falls on both alike."""
    ours: list[float] = []
    theirs: list[float] = []
    for i in range(rounds):
        pair = (subject, baseline) if i % 2 == 0 else (baseline, subject)
        for fn in pair:
            (ours if fn is subject else theirs).append(fn())
    return ours, theirs


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@dataclass
class Report:
    """Figures and raw series of one benchmark, written to ``bench/results``."""

    name: str
    figures: list[Figure] = field(default_factory=list)
    series: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def write(self, directory: Path = RESULTS) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.name}.json"
        document = {
            "benchmark": self.name,
            "machine": describe(),
            "commit": git_commit(),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "figures": [f.as_json() for f in self.figures],
            "notes": self.notes,
            "series": self.series,
        }
        path.write_text(json.dumps(document, indent=1) + "\n")
        return path


def _cell(value: float | None, digits: int = 2) -> str:
    if value is None or math.isnan(value):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def table(figures: Iterable[Figure]) -> str:
    """A plain-text table: figure, value, baseline, ratio, target, and whether it is met."""
    header = ("benchmark", "figure", "value", "baseline", "ratio", "target", "met")
    rows = [header]
    for f in figures:
        met = {True: "yes", False: "NO", None: ""}[f.met]
        rows.append(
            (
                f.benchmark,
                f.name,
                f"{_cell(f.value)} {f.unit}",
                f"{_cell(f.baseline)} {f.unit}" if f.baseline is not None else "",
                f"{_cell(f.ratio)}x" if f.ratio is not None else "",
                str(f.target) if f.target else "",
                met,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def summary(samples: Sequence[float]) -> dict[str, float]:
    return {
        "n": float(len(samples)),
        "p50": percentile(samples, 50),
        "p99": percentile(samples, 99),
        "mean": statistics.fmean(samples) if samples else math.nan,
    }
