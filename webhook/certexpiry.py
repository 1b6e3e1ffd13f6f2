"""The serving certificate's expiry, read from its file whenever Prometheus asks.

Read at scrape time, not at start: the file is replaced on renewal while the process runs,
and an alert must see the certificate actually on disk.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path

from kube import certs

log = logging.getLogger(__name__)


def expiry_reader(cert_file: Path) -> Callable[[], float]:
    """A gauge function: ``cert_file``'s notAfter as Unix seconds; NaN when unreadable."""

    def read() -> float:
        try:
            return certs.not_after(cert_file.read_bytes()).timestamp()
        except (OSError, ValueError) as err:
            log.debug("serving certificate %s unreadable: %s", cert_file, err)
            return math.nan

    return read
