"""PNG plots next to the JSON results (matplotlib, headless). Skipped, with a line saying
so, when matplotlib is not installed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.report import RESULTS, progress


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        progress("matplotlib is not installed: no plots (pip install -e '.[dev]')")
        return None
    return plt


def latency_cdf(
    name: str, title: str, series: Mapping[str, Sequence[float]], *, unit: str = "ms"
) -> Path | None:
    """One cumulative distribution per series, log-scaled latency, so p50 and p99 both show."""
    plt = _pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, samples in series.items():
        ordered = sorted(samples)
        if not ordered:
            continue
        ys = [(i + 1) / len(ordered) for i in range(len(ordered))]
        ax.plot(ordered, ys, label=f"{label} (n={len(ordered)})")
    ax.set_xscale("log")
    ax.set_xlabel(f"latency ({unit}, log scale)")
    ax.set_ylabel("fraction of requests")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, plt, name)


def bars(name: str, title: str, values: Mapping[str, float], *, unit: str) -> Path | None:
    plt = _pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.4 * max(1, len(values))))
    labels = list(values)
    ax.barh(labels, [values[k] for k in labels])
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    ax.set_title(title)
    ax.grid(True, axis="x", alpha=0.3)
    for i, v in enumerate(values.values()):
        ax.text(v, i, f" {v:,.0f}" if v >= 100 else f" {v:.2f}", va="center", fontsize="small")
    return _save(fig, plt, name)


def _save(fig: Any, plt: Any, name: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
