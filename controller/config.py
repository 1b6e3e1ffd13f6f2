"""What the ``controller`` process is told, by concern: the reconcilers' own configurations
(``PullSecretConfig``, ``CertificateConfig``), the registry behind the front door, and how
hard and how often the controller may call the API server. Built by the command
(``cli.configs``); of the reconcilers it imports at run time only the quota-usage
reconciler's pure rules, for their default, and no wiring (which imports
prometheus_client), so that the command reads the defaults while it builds its parser."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from controller.quotausage.reconciler import DEFAULT_QUOTA_RELEASE_GRACE_SECONDS
from kube.listener import DEFAULT_HEALTH_PROBE_BIND_ADDRESS, DEFAULT_METRICS_BIND_ADDRESS
from quota.imagepruner.cronjob import PrunerSettings

if TYPE_CHECKING:
    from controller.certificates.reconciler import CertificateConfig
    from controller.pullsecrets.reconciler import PullSecretConfig

DEFAULT_TOKEN_LIFETIME_SECONDS = 3600
"""One hour, the TokenRequest API's own default."""
MIN_TOKEN_LIFETIME_SECONDS = 600
"""The TokenRequest API refuses shorter lifetimes."""
DEFAULT_KUBE_API_QPS = 50.0
DEFAULT_KUBE_API_BURST = 100
"""The controller's client-side limit (client-go's 5/10 is far too low for one write per
ServiceAccount); docs/benchmarks.md measures what it costs."""
DEFAULT_RECONCILE_WORKERS = 4
"""ServiceAccounts reconciled at once; they share the ``DEFAULT_KUBE_API_QPS`` budget."""
DEFAULT_RESYNC_SECONDS = 300
"""Every object is reconciled again this often even without a change (controller-runtime's
SyncPeriod is 10 h; ours is short because token refreshes are time-driven)."""


@dataclass(frozen=True)
class UpstreamRegistryConfig:
    """The registry behind the front door, whose tags the controller keeps to the
    ImageStreams'."""

    url: str
    ca_file: Path | None = None


@dataclass(frozen=True)
class ReconcileConfig:
    """How hard and how often the reconcilers call the API server."""

    kube_api_qps: float = DEFAULT_KUBE_API_QPS
    kube_api_burst: int = DEFAULT_KUBE_API_BURST
    reconcile_workers: int = DEFAULT_RECONCILE_WORKERS
    resync_seconds: int = DEFAULT_RESYNC_SECONDS


DEFAULT_RECONCILE = ReconcileConfig()


@dataclass(frozen=True)
class ControllerConfig:
    namespace: str
    """Where the controller runs: its Lease, and the certificate Secret."""
    pull_secrets: PullSecretConfig
    certificates: CertificateConfig | None
    """None where cert-manager issues the webhook's certificates."""
    upstream: UpstreamRegistryConfig | None = None
    """None: the registry's tags are left alone."""
    reconcile: ReconcileConfig = DEFAULT_RECONCILE
    quota_release_grace_seconds: float = DEFAULT_QUOTA_RELEASE_GRACE_SECONDS
    node_ca_namespace: str | None = None
    """Where the node-ca DaemonSet runs: the ConfigMap image-registry-certificates is kept
    there. None: node trust is not installed, and nothing is kept."""
    pruner: PrunerSettings | None = None
    """The image-pruner CronJob's image and registry (``--pruner-image``). None: no
    CronJob is rendered, and ImagePruners are left alone."""
    leader_elect: bool = True
    health_probe_bind_address: str = DEFAULT_HEALTH_PROBE_BIND_ADDRESS
    metrics_bind_address: str = DEFAULT_METRICS_BIND_ADDRESS
    kubeconfig: str | None = None
