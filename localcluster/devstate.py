"""Where a running ``make dev`` stack is, in a small JSON file beside its kubeconfig, so that
developer tools (``python -m localcluster.attacks``) find it without parsing its banner.

``python -m localcluster`` writes it once the stack is up and removes it when it stops;
nothing in it is secret (paths and loopback addresses: the kubeconfig it names is)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from localcluster.binaries import REPO_ROOT
from localcluster.ocitools import crane_binary
from localcluster.stack import Stack
from serving.config import DEFAULT_THREADS, DEFAULT_WORKERS

STATE_FILE = "dev.json"
"""In the state directory (``.local`` by default), beside ``kubeconfig``."""
DEFAULT_PATH = REPO_ROOT / ".local" / STATE_FILE


@dataclass(frozen=True)
class DevStack:
    """A running dev stack as its clients need it: the API server's kubeconfig and kubectl,
    the front door's address and CA, the registry behind it, crane."""

    kubeconfig: str
    kubectl: str
    frontdoor_host: str
    frontdoor_ca_file: str
    frontdoor_metrics_url: str
    frontdoor_workers: int
    frontdoor_threads: int
    registry_url: str
    registry_ca_file: str
    crane: str

    @property
    def frontdoor_url(self) -> str:
        return f"https://{self.frontdoor_host}"


def of(stack: Stack) -> DevStack:
    """What ``stack`` (started, with its front door and the default settings) offers."""
    door = stack.frontdoor
    if door is None:
        raise ValueError("the stack runs no front door")
    return DevStack(
        kubeconfig=str(stack.kubeconfig),
        kubectl=str(stack.cp.kubectl()),
        frontdoor_host=door.host,
        frontdoor_ca_file=str(door.ca_file),
        frontdoor_metrics_url=door.metrics_url,
        # make dev passes no --workers or --threads: the settings' defaults hold.
        frontdoor_workers=DEFAULT_WORKERS,
        frontdoor_threads=DEFAULT_THREADS,
        registry_url=door.registry.url,
        registry_ca_file=str(door.registry.ca_file),
        crane=str(crane_binary()),
    )


def write(path: Path, state: DevStack) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(state), indent=2) + "\n")


def read(path: Path = DEFAULT_PATH) -> DevStack:
    """The stack ``make dev`` left running; FileNotFoundError when none is."""
    return DevStack(**json.loads(path.read_text()))
