"""The ``node-ca`` command: keep the node's ``certs.d`` to the mounted ConfigMap until
SIGTERM.

It polls rather than watching with inotify: the kubelet updates a ConfigMap volume by
swapping one symlink (``..data``), which an inotify watch on the keys' names never sees,
and the comparison of a few small files every ``--sync-seconds`` costs nothing. It needs
no API access (the pod mounts no token): the kubelet brings the ConfigMap.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from nodeca.config import NodeCaConfig
from nodeca.files import apply, read_mounted, read_present
from nodeca.plan import desired_hosts, plan

log = logging.getLogger(__name__)


class Said:
    """What was last warned about, so that a pass every few seconds says a lasting
    problem once, and again only when it changes."""

    def __init__(self) -> None:
        self.refused: tuple[str, ...] = ()
        self.foreign: tuple[str, ...] = ()


def sync_once(config: NodeCaConfig, said: Said | None = None) -> bool:
    """One pass: read both sides, plan, apply. True when something was written or removed."""
    said = said or Said()
    desired, refused = desired_hosts(read_mounted(config.certificates_dir))
    if tuple(refused) != said.refused:
        for key in refused:
            log.warning("ConfigMap key %r names no registry host directory: skipped", key)
        said.refused = tuple(refused)
    steps = plan(desired, read_present(config.hosts_dir))
    if steps.foreign != said.foreign:
        for host in steps.foreign:
            log.warning(
                "%s exists and was not written by node-ca: left alone (it decides how this "
                "node trusts %s)",
                config.hosts_dir / host,
                host,
            )
        said.foreign = steps.foreign
    if steps.empty:
        return False
    apply(config.hosts_dir, steps)
    written = sorted({w.directory for w in steps.writes})
    removed = [r.directory for r in steps.removals]
    log.info("certs.d updated: wrote %s, removed %s", written or "nothing", removed or "nothing")
    return True


def run_node_ca(config: NodeCaConfig, stop: threading.Event | None = None) -> int:
    """Sync now and every ``sync_seconds`` until ``stop`` (SIGTERM or SIGINT)."""
    stop = stop or threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    log.info(
        "node-ca: mirroring %s into %s every %ss",
        config.certificates_dir,
        config.hosts_dir,
        config.sync_seconds,
    )
    said = Said()
    while not stop.is_set():
        try:
            sync_once(config, said)
        except OSError as err:  # a full disk, a read-only mount: said, and tried again
            log.error("node-ca: sync failed: %s", err)
        stop.wait(config.sync_seconds)
    log.info("node-ca stopped")
    return 0
