"""``--prune-registry``: distribution's own garbage collection (``registry garbage-collect``),
run the safe way, and the bytes it freed on disk.

Distribution's GC marks every blob a manifest references, then sweeps the rest; it must
not run while a push is in flight, or a manifest that lands between mark and sweep names
blobs the sweep then deletes (distribution's docs: "the registry should be in read-only
mode or not running"). So:

1. ``configs.imageregistry.operator.alauda.io/cluster`` gets ``spec.readOnly: true``; every
   front door worker watches it and refuses new writes from then on
   (``frontdoor.readonly``);
2. the pruner waits ``write_drain_seconds``: the longest a write the front door took just
   before the switch can still be reaching the registry (``DEFAULT_WRITE_DRAIN_SECONDS``
   says what it adds up), so none is in flight when GC starts;
3. ``registry garbage-collect <registry config>`` runs (without ``--delete-untagged``: the
   Images the API keeps name manifests no registry tag points at);
4. ``spec.readOnly`` is put back to what it was, on success, failure, Ctrl-C or SIGTERM.

The remaining hazard: a client that uploaded its blobs before step 1 and pushes the
manifest after step 4 finds those blobs collected; the registry refuses the manifest with
``MANIFEST_BLOB_UNKNOWN`` (the front door passes it on), and the client's retry of the
push uploads them again. Nothing half-stored is ever served.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Final, Protocol

import yaml
from kubernetes.client.exceptions import ApiException

from quota.objects import Obj, mapping

log = logging.getLogger(__name__)

RESTORE_ATTEMPTS: Final = 5
RESTORE_PAUSE_SECONDS: Final = 2.0
"""Tries at putting ``readOnly`` back, and the pause between them: a registry left
read-only refuses every push, so an API blip at the wrong moment is retried for ~10 s
before the pruner gives up and says how to do it by hand."""
SUMMARY_PREFIX: Final = "blobs marked"
"""The words of the summary line ``registry garbage-collect`` prints last
(``N blobs marked, M blobs and K manifests eligible for deletion``)."""


class RegistrySwitch(Protocol):
    """The registry Config, where ``readOnly`` is set (``api.PruneApi``)."""

    def registry_config(self) -> Obj | None: ...

    def patch_registry_config(self, patch: Obj) -> Obj: ...


class CollectFailed(Exception):
    """The collection did not run, or failed; the message says why and what is left."""


@dataclass(frozen=True)
class Collected:
    before_bytes: int | None
    after_bytes: int | None
    """Bytes on disk of the filesystem storage root; None for another storage driver."""
    summary: str
    """What the collector said last."""

    @property
    def freed_bytes(self) -> int | None:
        if self.before_bytes is None or self.after_bytes is None:
            return None
        return self.before_bytes - self.after_bytes


def storage_root(registry_config: Path) -> Path | None:
    """The filesystem driver's root directory, None for another driver."""
    try:
        config = yaml.safe_load(registry_config.read_text())
    except (OSError, yaml.YAMLError) as err:
        message = f"cannot read the registry configuration {registry_config}: {err}"
        raise CollectFailed(message) from None
    filesystem = mapping(mapping(mapping(config).get("storage")).get("filesystem"))
    root = filesystem.get("rootdirectory")
    return Path(root) if isinstance(root, str) and root else None


def disk_bytes(root: Path) -> int:
    """Bytes the tree under ``root`` takes on disk (``du``: allocated blocks, each inode
    once), which is what a full volume runs out of."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for directory, _, files in os.walk(root):
        for name in files:
            try:
                stat = os.lstat(os.path.join(directory, name))
            except FileNotFoundError:  # an upload purged while we walk
                continue
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_blocks * 512
    return total


def _restore(api: RegistrySwitch, value: Any) -> None:
    patch = {"spec": {"readOnly": value}}
    for attempt in range(1, RESTORE_ATTEMPTS + 1):
        try:
            api.patch_registry_config(patch)
            return
        except (ApiException, OSError) as err:
            log.warning("putting readOnly back failed (try %d): %s", attempt, err)
            time.sleep(RESTORE_PAUSE_SECONDS)
    log.error(
        "the registry stays read-only: put it back with kubectl patch "
        "configs.imageregistry.operator.alauda.io cluster --type=merge "
        '-p \'{"spec":{"readOnly":%s}}\'',
        "false" if value is None else str(value).lower(),
    )


@contextmanager
def read_only(api: RegistrySwitch) -> Iterator[None]:
    """``spec.readOnly: true`` for the duration, then what it was (unset stays unset)."""
    config = api.registry_config()
    if config is None:
        raise CollectFailed(
            "configs.imageregistry.operator.alauda.io/cluster does not exist: the front door "
            "cannot be made read-only, so the registry is not collected"
        )
    was = mapping(config.get("spec")).get("readOnly")
    api.patch_registry_config({"spec": {"readOnly": True}})
    log.info("the registry is read-only for its garbage collection")
    try:
        yield
    finally:
        _restore(api, was if isinstance(was, bool) else None)
        log.info("the registry's readOnly is back to %s", was)


@contextmanager
def terminated_as_interrupt() -> Iterator[None]:
    """SIGTERM (a Job deleted, a node drained) raises like Ctrl-C, so the ``finally``
    that puts ``readOnly`` back runs."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def garbage_collect(binary: str, registry_config: Path) -> str:
    """``registry garbage-collect``; its summary line. The child is stopped with us."""
    env = {**os.environ, "OTEL_TRACES_EXPORTER": os.environ.get("OTEL_TRACES_EXPORTER", "none")}
    try:
        child = subprocess.Popen(
            [binary, "garbage-collect", str(registry_config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
    except OSError as err:
        raise CollectFailed(f"cannot run {binary}: {err}") from None
    try:
        output, _ = child.communicate()
    except BaseException:
        child.terminate()
        child.wait()
        raise
    lines = [line for line in output.splitlines() if line.strip()]
    if child.returncode != 0:
        tail = "\n".join(lines[-5:])
        raise CollectFailed(f"{binary} garbage-collect exited {child.returncode}:\n{tail}")
    return next((line for line in reversed(lines) if SUMMARY_PREFIX in line), "")


def collect(
    api: RegistrySwitch,
    binary: str,
    registry_config: Path,
    write_drain_seconds: float,
    wait: Callable[[float], None] = time.sleep,
) -> Collected:
    """Steps 1-4 of the module docstring."""
    root = storage_root(registry_config)
    with terminated_as_interrupt(), read_only(api):
        log.info("waiting %.0f s for writes in flight to finish", write_drain_seconds)
        wait(write_drain_seconds)
        before = disk_bytes(root) if root else None
        summary = garbage_collect(binary, registry_config)
        after = disk_bytes(root) if root else None
    return Collected(before, after, summary)
