"""What the ``frontdoor`` process is told: the registry behind it, the audience of the
tokens it accepts, and the name of the registry it records. Built by the command
(``cli.configs``); free of Flask and prometheus_client, so that the command reads its
defaults while it builds its parser."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_BIND = "0.0.0.0:5000"
"""The registry's port, as the internal service ``image-registry...svc:5000`` names it."""


@dataclass(frozen=True)
class FrontDoorConfig:
    upstream_registry: str
    """The registry's base URL (https://, or http:// on loopback)."""
    upstream_ca_file: Path | None
    """The CA bundle that signed the upstream's certificate; None: the system's."""
    token_audiences: tuple[str, ...]
    """The registry audience a client's token must be valid for."""
    internal_registry: str
    """host:port of the internal registry, as the Images it records name it."""
    kubeconfig: str | None = None
