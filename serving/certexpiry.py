"""The serving certificate's expiry, read from its file whenever Prometheus asks.

Read at scrape time, not at start: the file is replaced on renewal while the process runs,
and an alert must see the certificate actually on disk.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from kube import certs

log = logging.getLogger(__name__)

NAME = "registry_v2_policy_serving_certificate_expiry_timestamp_seconds"
DOCUMENTATION = (
    "notAfter (Unix time) of the serving certificate file, read at each scrape so that a "
    "renewed file shows at once; NaN while the file cannot be read."
)


def expiry_reader(cert_file: Path) -> Callable[[], float]:
    """A gauge function: ``cert_file``'s notAfter as Unix seconds; NaN when unreadable."""

    def read() -> float:
        try:
            return certs.not_after(cert_file.read_bytes()).timestamp()
        except (OSError, ValueError) as err:
            log.debug("serving certificate %s unreadable: %s", cert_file, err)
            return math.nan

    return read


class ExpiryCollector(Collector):
    """The expiry as a gauge of the process that serves the metrics (gunicorn's master):
    read from the file at each scrape, the same for every worker."""

    def __init__(self, cert_file: Path) -> None:
        self._read = expiry_reader(cert_file)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(NAME, DOCUMENTATION, value=self._read())
