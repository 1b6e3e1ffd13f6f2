"""The upstream registry's storage as the node holds it, for a garbage collection run from
the host: ``prune images --prune-registry`` needs the registry's configuration, storage and
binary, which only the node's host has (the CronJob's pod has none of them)."""

from __future__ import annotations

import json
from pathlib import Path

from localcluster.node import Node
from tests.e2e.support import install
from tests.e2e.support.nodecluster import NodeCluster

STORAGE_VOLUME = "storage"
"""The upstream Deployment's emptyDir volume (``install.upstream_registry``)."""
EMPTY_DIR_PLUGIN = "kubernetes.io~empty-dir"
"""The kubelet's directory for emptyDir volumes under a pod's ``volumes/``."""


def upstream_storage_dir(cluster: NodeCluster) -> Path:
    """Where the upstream registry's emptyDir lives on the node: the kubelet keeps each
    pod's volumes under ``<root-dir>/pods/<pod uid>/volumes/<plugin>/<volume>``."""
    pods = cluster.get(
        "pods",
        "-n",
        install.NAMESPACE,
        "-l",
        ",".join(f"{k}={v}" for k, v in install.UPSTREAM_LABELS.items()),
    )["items"]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return _volume_dir(cluster.node, pods[0]["metadata"]["uid"])


def _volume_dir(node: Node, uid: str) -> Path:
    path = node.kubelet_root / "pods" / uid / "volumes" / EMPTY_DIR_PLUGIN / STORAGE_VOLUME
    assert path.is_dir(), f"no emptyDir at {path}"
    return path


def write_collection_config(path: Path, storage: Path) -> Path:
    """A registry configuration that only names the storage: ``registry garbage-collect``
    reads ``storage`` and nothing else (it serves nothing)."""
    config = {
        "version": 0.1,
        "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
    }
    path.write_text(json.dumps(config, indent=2))
    return path
