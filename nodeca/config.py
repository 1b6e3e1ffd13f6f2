"""What the ``node-ca`` process is told; its defaults, read by the command's parser."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

DEFAULT_CERTIFICATES_DIR: Final = "/certificates"
"""Where the DaemonSet mounts the ConfigMap image-registry-certificates
(manifests/components/node-ca)."""
DEFAULT_HOSTS_DIR: Final = "/etc/containerd/certs.d"
"""containerd's registry host directory (its CRI ``registry.config_path``): the usual
path, mounted from the node at the same path."""
DEFAULT_SYNC_SECONDS: Final = 10.0
"""How often the mounted files are compared with the node's: the kubelet refreshes a
ConfigMap volume about once a minute (its sync period plus its cache's TTL), so this adds
at most a sixth to a rotation's delay, for reading a few small files."""


@dataclass(frozen=True)
class NodeCaConfig:
    certificates_dir: Path
    hosts_dir: Path
    sync_seconds: float = DEFAULT_SYNC_SECONDS
