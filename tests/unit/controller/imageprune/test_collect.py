"""The collection's safety: read-only before GC, what it was after (also on failure and
Ctrl-C), the real drain bound, the bytes on disk."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException

from controller.imageprune import collect as collecting
from controller.imageprune.collect import (
    CollectFailed,
    collect,
    disk_bytes,
    garbage_collect,
    read_only,
    storage_root,
)
from controller.imageprune.config import DEFAULT_WRITE_DRAIN_SECONDS
from controller.imageprune.holder import HOLDER_ANNOTATION, Hold
from frontdoor.main import UPLOAD_WAIT_SECONDS
from frontdoor.upstream import CONNECT_SECONDS
from frontdoor.upstream import READ_SECONDS as UPSTREAM_READ_SECONDS
from kube.informer import Informer
from serving.tlsserver import READ_SECONDS as HEADER_SECONDS


class Api:
    """configs/cluster with a resourceVersion, patched as the API server merges a patch
    (null deletes, a resourceVersion in it is a precondition), and every readOnly set."""

    def __init__(self, spec: dict[str, Any] | None) -> None:
        self.config = (
            None if spec is None else {"metadata": {"resourceVersion": "1"}, "spec": dict(spec)}
        )
        self.patches: list[Any] = []
        self.events: list[str] = []
        self.lose_answers = 0
        """Patches that apply but whose answer never comes (a client timeout)."""
        self.fail_reads = 0

    def registry_config(self) -> dict[str, Any] | None:
        if self.fail_reads:
            self.fail_reads -= 1
            raise urllib3.exceptions.ReadTimeoutError(None, "/", "read timed out")  # type: ignore[arg-type]
        return copy.deepcopy(self.config)

    def patch_registry_config(self, patch: dict[str, Any]) -> dict[str, Any]:
        assert self.config is not None
        version = patch.get("metadata", {}).get("resourceVersion")
        if version is not None and version != self.config["metadata"]["resourceVersion"]:
            raise ApiException(status=409, reason="Conflict")
        merge(self.config, patch)
        self.config["metadata"]["resourceVersion"] = str(
            int(self.config["metadata"]["resourceVersion"]) + 1
        )
        self.patches.append(patch["spec"]["readOnly"])
        self.events.append(f"readOnly={patch['spec']['readOnly']}")
        if self.lose_answers:
            self.lose_answers -= 1
            raise urllib3.exceptions.ReadTimeoutError(None, "/", "read timed out")  # type: ignore[arg-type]
        return {}

    def read_only(self) -> object:
        assert self.config is not None
        return self.config["spec"].get("readOnly")

    def hold(self) -> object:
        assert self.config is not None
        return self.config["metadata"].get("annotations", {}).get(HOLDER_ANNOTATION)


def merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """RFC 7386 JSON merge patch."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            merge(target.setdefault(key, {}), value)
        else:
            target[key] = value


def script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "registry"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def config_file(tmp_path: Path, root: Path | None) -> Path:
    storage: dict[str, Any] = {"filesystem": {"rootdirectory": str(root)}} if root else {"s3": {}}
    path = tmp_path / "config.yml"
    path.write_text(json.dumps({"version": 0.1, "storage": storage}))
    return path


def test_the_drain_bound_is_the_front_doors_longest_write_and_a_watch_relist() -> None:
    backoff = Informer.__init__.__kwdefaults__["max_backoff_seconds"]  # type: ignore[index]
    longest = HEADER_SECONDS + UPLOAD_WAIT_SECONDS + CONNECT_SECONDS + UPSTREAM_READ_SECONDS
    assert backoff + longest <= DEFAULT_WRITE_DRAIN_SECONDS


def test_gc_runs_read_only_and_unset_read_only_is_unset_again(tmp_path: Path) -> None:
    api = Api({})
    binary = script(tmp_path, 'echo "1 blobs marked, 2 blobs and 1 manifests eligible"')

    def drained(seconds: float) -> None:
        api.events.append(f"drain {seconds:g}")

    done = collect(api, binary, config_file(tmp_path, None), 7, wait=drained)
    assert api.events == ["readOnly=True", "drain 7", "readOnly=None"]
    assert done.summary == "1 blobs marked, 2 blobs and 1 manifests eligible"
    assert done.freed_bytes is None


def test_read_only_already_set_by_someone_stays_set(tmp_path: Path) -> None:
    api = Api({"readOnly": True})
    collect(api, script(tmp_path, "true"), config_file(tmp_path, None), 0, wait=lambda s: None)
    assert api.patches == [True, True]


def test_a_failed_gc_puts_read_only_back_and_says_why(tmp_path: Path) -> None:
    api = Api({"readOnly": False})
    binary = script(tmp_path, "echo 'storage broken' >&2; exit 3")
    with pytest.raises(CollectFailed, match=r"exited 3:\nstorage broken"):
        collect(api, binary, config_file(tmp_path, None), 0, wait=lambda s: None)
    assert api.patches == [True, False]


def test_an_interrupt_during_the_drain_puts_read_only_back(tmp_path: Path) -> None:
    api = Api({})

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        collect(api, script(tmp_path, "true"), config_file(tmp_path, None), 1, wait=interrupted)
    assert api.patches == [True, None]


def test_no_config_object_means_no_collection(tmp_path: Path) -> None:
    api = Api(None)
    with pytest.raises(CollectFailed, match="cannot be made read-only"):
        collect(
            api, script(tmp_path, "exit 9"), config_file(tmp_path, None), 0, wait=lambda s: None
        )
    assert api.patches == []


def test_the_filesystem_drivers_bytes_on_disk_are_measured_around_gc(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    (root / "blobs").mkdir(parents=True)
    (root / "blobs" / "a").write_bytes(b"x" * 10_000)
    (root / "blobs" / "b").write_bytes(b"y" * 100)
    binary = script(tmp_path, f'rm "{root}/blobs/a"')
    done = collect(Api({}), binary, config_file(tmp_path, root), 0, wait=lambda s: None)
    assert done.freed_bytes is not None and done.freed_bytes >= 10_000
    assert done.after_bytes == disk_bytes(root)


def test_storage_root_is_the_filesystem_drivers_and_none_for_others(tmp_path: Path) -> None:
    assert storage_root(config_file(tmp_path, tmp_path / "s")) == tmp_path / "s"
    assert storage_root(config_file(tmp_path, None)) is None
    with pytest.raises(CollectFailed, match="cannot read"):
        storage_root(tmp_path / "missing.yml")


def test_a_missing_binary_is_a_clear_failure(tmp_path: Path) -> None:
    with pytest.raises(CollectFailed, match="cannot run"):
        garbage_collect(str(tmp_path / "nope"), tmp_path / "config.yml")


def test_sigterm_is_an_interrupt_while_collecting() -> None:
    import os
    import signal

    with pytest.raises(KeyboardInterrupt), collecting.terminated_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)


LEASE = timedelta(hours=1)
NOW = datetime(2026, 12, 8, tzinfo=UTC)


def test_a_read_only_set_whose_answer_is_lost_is_still_put_back(tmp_path: Path) -> None:
    api = Api({})
    api.lose_answers = 1
    with pytest.raises(urllib3.exceptions.HTTPError):
        collect(api, script(tmp_path, "true"), config_file(tmp_path, None), 0, wait=lambda s: None)
    assert api.read_only() is None
    assert api.hold() is None


def test_a_second_run_refuses_to_collect_while_the_first_holds_the_switch(
    tmp_path: Path,
) -> None:
    api = Api({})
    ran = tmp_path / "ran"
    with read_only(api, LEASE, holder="first"):
        with pytest.raises(CollectFailed, match=r"another collection \(first\) holds"):
            collect(api, script(tmp_path, f": > {ran}"), config_file(tmp_path, None), 0)
        assert api.read_only() is True  # the refused run put nothing back
    assert not ran.exists()
    assert api.read_only() is None
    assert api.hold() is None


def test_an_expired_hold_of_a_killed_run_is_taken_over_and_its_saved_value_restored(
    tmp_path: Path,
) -> None:
    api = Api({"readOnly": True})
    assert api.config is not None
    dead = Hold("killed", NOW - timedelta(seconds=1), saved=None)
    api.config["metadata"]["annotations"] = {HOLDER_ANNOTATION: dead.to_json()}
    collect(api, script(tmp_path, "true"), config_file(tmp_path, None), 0, now=lambda: NOW)
    assert api.read_only() is None
    assert api.hold() is None


def test_a_run_whose_hold_was_taken_over_leaves_the_switch_to_its_new_holder() -> None:
    api = Api({})
    with read_only(api, LEASE, holder="slow"):
        assert api.config is not None
        newer = Hold("newer", NOW + LEASE, saved=None)
        api.config["metadata"]["annotations"][HOLDER_ANNOTATION] = newer.to_json()
    assert api.patches == [True]
    assert api.read_only() is True


def test_putting_read_only_back_survives_an_api_timeout() -> None:
    api = Api({"readOnly": False})
    pauses: list[float] = []
    with read_only(api, LEASE, holder="me", pause=pauses.append):
        api.fail_reads = 1
    assert api.read_only() is False
    assert len(pauses) == 1


def test_a_collection_still_running_when_its_hold_ends_is_stopped(tmp_path: Path) -> None:
    with pytest.raises(CollectFailed, match="did not finish within 0 s"):
        garbage_collect(script(tmp_path, "exec sleep 30"), tmp_path / "config.yml", timeout=0.2)
