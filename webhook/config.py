"""What the ``serve`` process is told: its registration, the namespaces it never admits,
and who may call PushReview. Built by the command (``cli.configs``); free of Flask and
prometheus_client, so that the command reads its defaults while it builds its parser."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_BIND = "0.0.0.0:8443"
"""The TLS port of admission and PushReview: the manifests' container port ``https``."""
DEFAULT_SERVICE_PORT = 443
"""The port of the Service in front of the server (manifests/base/webhook.yaml)."""


@dataclass(frozen=True)
class WebhookConfig:
    """The admission webhooks and PushReview of one ``serve`` process."""

    namespace: str
    """Where the service runs: the Service's namespace in the webhook configurations."""
    excluded_namespaces: tuple[str, ...]
    """Every namespace never admitted: the service's own, kube-system, configured ones."""
    configuration_name: str
    service_name: str
    service_port: int = DEFAULT_SERVICE_PORT
    webhook_url: str | None = None
    """The base URL the API server calls (url client config); None: the Service."""
    ca_file: Path | None = None
    """The caBundle published in the webhook configurations."""
    register: bool = False
    """Write the webhook configurations once the server listens (development)."""
    pushreview_token_audiences: tuple[str, ...] = ()
    """Audiences a PushReview caller's token must be valid for; empty: the API server's."""
    kubeconfig: str | None = None
