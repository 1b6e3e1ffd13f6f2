"""``--prune-registry``: distribution's own garbage collection (``registry garbage-collect``),
run the safe way, and the bytes it freed on disk.

Distribution's GC marks every blob a manifest references, then sweeps the rest; it must
not run while a push is in flight, or a manifest that lands between mark and sweep names
blobs the sweep then deletes (distribution's docs: "the registry should be in read-only
mode or not running"). So:

1. ``configs.imageregistry.operator.alauda.io/cluster`` gets ``spec.readOnly: true``,
   together with this run's hold (``holder``: who set it, until when, and what to put
   back), over the resourceVersion read; a live hold of another run means no collection.
   Every front door worker watches the Config and refuses new writes from then on
   (``frontdoor.readonly``);
2. the pruner waits ``write_drain_seconds``: the longest a write the front door took just
   before the switch can still be reaching the registry (``DEFAULT_WRITE_DRAIN_SECONDS``
   says what it adds up), so none is in flight when GC starts;
3. ``registry garbage-collect <registry config>`` runs (without ``--delete-untagged``: the
   Images the API keeps name manifests no registry tag points at);
4. ``spec.readOnly`` is put back to what it was, on success, failure, Ctrl-C or SIGTERM,
   if the hold is still this run's. A run killed outright leaves its hold; it expires
   when its collection would have been stopped (``COLLECTION_SECONDS`` after the drain),
   and the next run takes it over and puts back the value it saved.

The front door asks the switch again right before a write reaches the registry (a
manifest's PUT, and an upload's final PUT before its last chunk: ``frontdoor.pushes``,
``frontdoor.uploads``), so a write that began before step 1 is refused if it has not
reached the registry yet. The drain still covers what no check can see: a front door
worker's watch learning of the switch late (a broken watch's relist), and a write that
passed its last check just before and is still being stored by the registry.

The remaining hazard: a client that uploaded its blobs before step 1 and pushes the
manifest after step 4 finds those blobs collected; the registry refuses the manifest with
``MANIFEST_BLOB_UNKNOWN`` (the front door passes it on), and the client's retry of the
push uploads them again. Nothing half-stored is ever served.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Final, Protocol

import urllib3
import yaml
from kubernetes.client.exceptions import ApiException

from controller.imageprune import holder as holds
from kube import apierrors
from quota.objects import Obj, mapping

log = logging.getLogger(__name__)

RESTORE_ATTEMPTS: Final = 5
RESTORE_PAUSE_SECONDS: Final = 2.0
"""Tries at putting ``readOnly`` back, and the pause between them: a registry left
read-only refuses every push, so an API blip at the wrong moment is retried for ~10 s
before the pruner gives up and says how to do it by hand."""
TAKE_ATTEMPTS: Final = 5
"""Fresh reads of the Config before setting ``readOnly`` gives up: each conflict is another
writer (the operator, a route's edit) in between (client-go's ``retry.DefaultRetry``)."""
COLLECTION_SECONDS: Final = 3600.0
"""How long ``registry garbage-collect`` may run before it is stopped, and so (with the
drain) how long a run's hold on the switch lasts: a run killed outright blocks the next
collection for at most this. Distribution's GC reads each manifest and blob link once;
that is minutes for the tens of thousands of blobs of a cluster registry on disk."""
SUMMARY_PREFIX: Final = "blobs marked"
"""The words of the summary line ``registry garbage-collect`` prints last
(``N blobs marked, M blobs and K manifests eligible for deletion``)."""


API_ERRORS: Final = (ApiException, OSError, urllib3.exceptions.HTTPError)
"""What a call to the API server raises: its answer, or none (a timeout is urllib3's)."""


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


def _restore(api: RegistrySwitch, holder: str, pause: Callable[[float], None]) -> None:
    """Put ``readOnly`` back from the hold, only while the hold is still ``holder``'s;
    each try reads afresh, so a patch that applied before its answer was lost is seen."""
    for attempt in range(1, RESTORE_ATTEMPTS + 1):
        try:
            config = api.registry_config()
            patch = None if config is None else holds.release(config, holder)
            if patch is None:
                log.info("the registry's read-only switch is not this run's; left as it is")
                return
            api.patch_registry_config(patch)
            log.info("the registry's readOnly is back to %s", patch["spec"]["readOnly"])
            return
        except API_ERRORS as err:
            if isinstance(err, ApiException) and apierrors.is_conflict(err):
                continue  # the Config changed since the read: read it again
            log.warning("putting readOnly back failed (try %d): %s", attempt, _short(err))
            pause(RESTORE_PAUSE_SECONDS)
    log.error(
        "the registry stays read-only: put it back with kubectl annotate "
        "configs.imageregistry.operator.alauda.io cluster %s- and kubectl patch "
        "configs.imageregistry.operator.alauda.io cluster --type=merge "
        '-p \'{"spec":{"readOnly":<the value in that annotation>}}\'',
        holds.HOLDER_ANNOTATION,
    )


def _short(err: BaseException) -> str:
    """An API error in one line: the Status's message, not the response's headers."""
    if isinstance(err, ApiException):
        return f"{err.status}: {apierrors.status_of(err).get('message') or err.reason}"
    return f"{type(err).__name__}: {err}"


def _take(api: RegistrySwitch, holder: str, now: datetime, lease: timedelta) -> None:
    """Step 1: ``readOnly: true`` with this run's hold, over the resourceVersion read."""
    for _ in range(TAKE_ATTEMPTS):
        config = api.registry_config()
        if config is None:
            raise CollectFailed(
                "configs.imageregistry.operator.alauda.io/cluster does not exist: the front "
                "door cannot be made read-only, so the registry is not collected"
            )
        try:
            _, patch = holds.take(config, holder, now, lease)
        except holds.Held as err:
            raise CollectFailed(str(err)) from None
        try:
            api.patch_registry_config(patch)
            return
        except ApiException as err:
            if not apierrors.is_conflict(err):
                raise
    raise CollectFailed(
        f"configs.imageregistry.operator.alauda.io/cluster changed under each of "
        f"{TAKE_ATTEMPTS} tries to make it read-only; the registry is not collected"
    )


@contextmanager
def read_only(
    api: RegistrySwitch,
    lease: timedelta,
    holder: str | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    pause: Callable[[float], None] = time.sleep,
) -> Iterator[None]:
    """``spec.readOnly: true`` held by this run for at most ``lease``, then what it was
    before any collection (unset stays unset), whatever happens in between, even when the
    patch that set it applied but its answer never came."""
    me = holder or default_holder()
    try:
        _take(api, me, now(), lease)
        log.info("the registry is read-only for its garbage collection (%s)", me)
        yield
    finally:
        _restore(api, me, pause)


def default_holder() -> str:
    """Unique per run, and readable: the pod (host) and process that hold the switch."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


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


def garbage_collect(binary: str, registry_config: Path, timeout: float | None = None) -> str:
    """``registry garbage-collect``; its summary line. The child is stopped with us, and
    after ``timeout`` seconds (when the hold on the switch ends)."""
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
        output, _ = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.terminate()
        child.wait()
        raise CollectFailed(
            f"{binary} garbage-collect did not finish within {timeout:.0f} s, when this run's "
            "hold on the read-only switch ends; it was stopped (what it deleted was "
            "unreferenced), run again"
        ) from None
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
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Collected:
    """Steps 1-4 of the module docstring; the collector is stopped when the hold ends,
    so no other run can take the switch over while it still runs."""
    root = storage_root(registry_config)
    lease = timedelta(seconds=write_drain_seconds + COLLECTION_SECONDS)
    ends = now() + lease
    with terminated_as_interrupt(), read_only(api, lease, now=now):
        log.info("waiting %.0f s for writes in flight to finish", write_drain_seconds)
        wait(write_drain_seconds)
        before = disk_bytes(root) if root else None
        left = max((ends - now()).total_seconds(), 0.0)
        summary = garbage_collect(binary, registry_config, timeout=left)
        after = disk_bytes(root) if root else None
    return Collected(before, after, summary)
