"""Reading our processes' Prometheus pages, for the tests and the benchmarks alike."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.parser import text_string_to_metric_families


def metric_sum(pages: Iterable[str], name: str, **labels: str) -> float:
    """A sample summed over several processes' /metrics pages (0 when not exported yet):
    requests spread over replicas, so a count grows on any of them."""
    total = 0.0
    for page in pages:
        for family in text_string_to_metric_families(page):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total += sample.value
    return total
