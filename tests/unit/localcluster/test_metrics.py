"""Summing our processes' /metrics pages (tests and benchmarks read them alike)."""

from __future__ import annotations

from localcluster.metrics import metric_sum


def test_counters_are_summed_over_replicas_by_label() -> None:
    page = '# TYPE c_total counter\nc_total{result="charged"} 3.0\nc_total{result="conflict"} 1.0\n'
    assert metric_sum([page, page], "c_total", result="charged") == 6
    assert metric_sum([page], "c_total") == 4
    assert metric_sum([], "c_total", result="conflict") == 0
