"""``prune images --prune-registry`` against the real registry's filesystem storage: the
front door is read-only while distribution's garbage collection runs (a push is refused
with the read-only message), the bytes on disk drop by what the prune said it frees, the
kept image still pulls, and ``readOnly`` is put back."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.imageprune.collect import disk_bytes
from frontdoor.readonly import READ_ONLY_MESSAGE
from localcluster.crane import Crane
from localcluster.frontdoor import LocalFrontDoor
from localcluster.ocitools import registry_binary
from tests.integration.support.cluster import ClusterEnv, wait_for
from tests.integration.support.prune import (
    PRUNE_SECONDS,
    GatedCollector,
    account_kubeconfig,
    assert_grants_exactly_used,
    prune_argv,
)
from tests.integration.support.registry import (
    Registry,
    account,
    frontdoor_stack,
    image_dir,
    login,
)

LAYERS = (300_000, 200_000)
"""Big enough that the blobs, not the registry's small link files, dominate the bytes."""
OVERHEAD_PER_IMAGE = 64 * 1024
"""What a removed image frees besides the blobs the prune counts: its manifest blob, its
link files, and each file's last partial 4 KiB block."""
GC_ACCOUNT = "image-registry-gc"
GC_ROLE = "registry-v2:image-registry-gc"
"""Who runs the collection: README "Pruning" (manifests/base/image-pruner.yaml)."""
DEADLINE = 60.0
"""For the prune to reach its collection, and the front door's watch to see the switch."""


@pytest.fixture(scope="module")
def stack() -> Iterator[ClusterEnv]:
    """This module's own stack: the front door goes read-only, and a prune is cluster-wide."""
    with frontdoor_stack() as env:
        yield env


def number(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    assert found is not None, f"{pattern!r} not in:\n{text}"
    return found.group(1)


def config_read_only(stack: ClusterEnv) -> object:
    config = stack.kubectl_json("get", "configs.imageregistry.operator.alauda.io", "cluster")
    return config.get("spec", {}).get("readOnly")


def test_garbage_collection_runs_read_only_and_frees_the_pruned_blobs_on_disk(
    stack: ClusterEnv, door: LocalFrontDoor, crane: Crane, ns: str, tmp_path: Path
) -> None:
    token = account(stack, ns, "builder", "registry-editor")
    login(crane, door, token)
    digests = []
    for seed in (1, 2):
        directory, _ = image_dir(tmp_path, *LAYERS, seed=seed)
        pushed = crane.push(directory, f"{door.host}/{ns}/app:v1")
        assert pushed.returncode == 0, pushed.stderr
        digests.append(pushed.stdout.strip().rsplit("@", 1)[1])
    pruned, kept = digests
    collector = GatedCollector(tmp_path, registry_binary())
    storage = door.registry.storage_dir
    before = disk_bytes(storage)

    # As an admin would run it: a ServiceAccount bound to the shipped collection role.
    kubeconfig = account_kubeconfig(stack, tmp_path, GC_ACCOUNT, GC_ROLE)
    argv = prune_argv(
        kubeconfig, door,
        "--confirm", "--keep-tag-revisions=1", "--keep-younger-than=0s",
        "--ignore-invalid-refs",  # other tests' pods may name anything
        "--prune-registry", f"--registry-config={door.registry.config_file}",
        f"--registry-binary={collector.path}", "--write-drain-seconds=0",
    )  # fmt: skip
    prune = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(collector.started.exists, timeout=DEADLINE, what="the collection to start")
        assert config_read_only(stack) is True
        raw = Registry(door, token)
        wait_for(
            lambda: raw("POST", f"/v2/{ns}/late/blobs/uploads/").status_code == 405,
            timeout=DEADLINE,
            what="the front door to refuse writes",
        )
        directory, _ = image_dir(tmp_path, 1000, seed=3)
        refused = crane.push(directory, f"{door.host}/{ns}/late:v1")
        assert refused.returncode != 0
        assert READ_ONLY_MESSAGE in refused.stderr, refused.stderr
        assert crane.manifest(f"{door.host}/{ns}/app@{kept}").returncode == 0  # reads go on
        collector.release()
        out, err = prune.communicate(timeout=PRUNE_SECONDS)
    finally:
        if prune.poll() is None:
            prune.terminate()  # SIGTERM: the pruner puts readOnly back on its way out
            prune.communicate(timeout=PRUNE_SECONDS)
    assert prune.returncode == 0, err

    claimed = int(re.findall(r"\((\d+) bytes\) of blobs", out)[-1])
    removed = int(number(r"removed \d+ tag revisions, (\d+) images", out))
    reported = int(number(r"garbage collection freed .* \((\d+) bytes\) on disk", out))
    freed = before - disk_bytes(storage)
    assert pruned in out and sum(LAYERS) <= claimed
    assert claimed <= freed <= claimed + removed * OVERHEAD_PER_IMAGE, (claimed, freed, out)
    # The pruner measures after its manifest deletes (a link file each), the test before.
    assert claimed <= reported <= freed
    assert config_read_only(stack) is None
    assert crane.pull(f"{door.host}/{ns}/app@{kept}", tmp_path / "pulled").returncode == 0
    again = wait_for(
        lambda: crane.push(directory, f"{door.host}/{ns}/late:v1").returncode == 0,
        timeout=DEADLINE,
        what="pushes to be taken again",
    )
    assert again
    assert_grants_exactly_used(stack, tmp_path, GC_ACCOUNT)
