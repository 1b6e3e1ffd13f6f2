"""The metrics of every gunicorn worker, served once by the master.

prometheus_client's multiprocess mode: each worker writes its values to files in a
directory named by ``PROMETHEUS_MULTIPROC_DIR``, and the master's listener sums them at
each scrape. The client reads the variable once, when it is first imported, so
:func:`shared_directory` names the directory before anything imports it; this module
imports it only inside the functions the master calls later.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

ENVIRONMENT_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client's name for the directory."""
DIRECTORY_PREFIX = "registry-webhook-metrics-"
"""Under the temporary directory (``TMPDIR``, else /tmp: the Deployment's writable
emptyDir), one fresh directory per start of ``serve``."""


@contextmanager
def shared_directory() -> Iterator[Path]:
    """A fresh directory for this server's workers, named in the environment they inherit,
    removed when the master leaves (never by a worker: each leaves through here too).

    Fresh, so that a restarted container never adds the counts of its previous run (an
    emptyDir outlives its container).
    """
    if "prometheus_client" in sys.modules:
        raise RuntimeError(
            "prometheus_client was imported before its multiprocess directory was set: "
            "the workers' metrics would not reach the master"
        )
    owner = os.getpid()
    directory = Path(tempfile.mkdtemp(prefix=DIRECTORY_PREFIX))
    previous = os.environ.get(ENVIRONMENT_VARIABLE)
    os.environ[ENVIRONMENT_VARIABLE] = str(directory)
    try:
        yield directory
    finally:
        if os.getpid() == owner:
            shutil.rmtree(directory, ignore_errors=True)
            if previous is None:
                os.environ.pop(ENVIRONMENT_VARIABLE, None)
            else:
                os.environ[ENVIRONMENT_VARIABLE] = previous


def master_collectors(cert_file: Path) -> list[Collector]:
    """What the master reports of its own, beside the workers' sums: read at each scrape."""
    from serving.certexpiry import ExpiryCollector

    return [ExpiryCollector(cert_file)]


def master_registry(directory: Path, cert_file: Path) -> CollectorRegistry:
    """The master's registry: every worker's metrics summed (dead workers' counts kept, so
    a counter never goes back when a worker restarts), the serving certificate's expiry and
    ``python_info``. No ``process_*``: a process's numbers would be one of several; the
    container's CPU and memory come from the kubelet (cAdvisor)."""
    from prometheus_client import CollectorRegistry, PlatformCollector
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    PlatformCollector(registry=registry)
    for collector in master_collectors(cert_file):
        registry.register(collector)
    return registry


def worker_exited(pid: int) -> None:
    """gunicorn's ``child_exit``: the exited worker's live gauges leave the sums."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
