"""Settings of the server and controllers, from flags with environment-variable defaults.

Every flag ``--some-flag`` can also be set as ``REGISTRY_WEBHOOK_SOME_FLAG``; flags win.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

from quota.pullsecrets.names import DEFAULT_TOKEN_AUDIENCES

ENV_PREFIX = "REGISTRY_WEBHOOK_"
DEFAULT_NAMESPACE = "image-registry-system"
DEFAULT_INTERNAL_REGISTRY = "image-registry.image-registry-system.svc:5000"
DEFAULT_QUOTA_RELEASE_GRACE_SECONDS = 35.0
"""A charge is released only after its gap outlasts the slowest admission chain: the API
server allows a webhook up to 30 s, so a create admitted (and charged) now may be stored
that much later; 5 s more for the watch to bring it to the reconciler."""


DEFAULT_CERTIFICATE_PROPAGATION_SECONDS = 180.0
"""How long a certificate change takes to reach every reader: the kubelet updates a Secret
volume within its sync period (1 min) plus its watch's delay, and the API servers see a
webhook configuration through their watch within seconds; three minutes leaves room for a
busy node. The certificate manager waits this long between the steps of a CA rotation."""


def _env(flag: str, default: str | None = None) -> str | None:
    return os.environ.get(ENV_PREFIX + flag.upper().replace("-", "_"), default)


def _env_list(flag: str) -> list[str]:
    raw = _env(flag) or ""
    return [item.strip() for item in raw.split(",") if item.strip()]


def _env_bool(flag: str) -> bool:
    return (_env(flag) or "").lower() in {"1", "true", "yes", "on"}


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def parse_bool(value: str) -> bool:
    """``true``/``false`` (and 1/0, yes/no, on/off), as ``--flag=false`` is written."""
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {value!r} (use true or false)")


@dataclass
class Settings:
    """Everything the runtime needs to know about where it runs and how to behave."""

    namespace: str = DEFAULT_NAMESPACE
    kubeconfig: str | None = None
    log_level: str = "INFO"
    # Serving
    bind: str = "0.0.0.0:8443"
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    ca_file: Path | None = None
    client_ca_file: Path | None = None
    dev_certs_dir: Path | None = None
    # One gunicorn worker process per pod (its caches and metrics live in it); scale with
    # threads and replicas.
    workers: int = 1
    threads: int = 64
    # Self-registration of the webhook configurations
    register: bool = False
    webhook_url: str | None = None
    service_name: str = "image-registry-webhook"
    service_port: int = 443
    configuration_name: str = "image-registry-webhook"
    # PushReview callers' tokens are reviewed for these audiences; none: the API server's.
    pushreview_token_audiences: list[str] = field(default_factory=list)
    # Managed pull secrets
    internal_registry: str = DEFAULT_INTERNAL_REGISTRY
    extra_registry_hostnames: list[str] = field(default_factory=list)
    excluded_namespaces: list[str] = field(default_factory=list)
    token_lifetime_seconds: int = 3600
    token_audiences: list[str] = field(default_factory=lambda: list(DEFAULT_TOKEN_AUDIENCES))
    # Controller
    leader_election: bool = True
    reconcile_workers: int = 4
    api_qps: float = 50.0
    api_burst: int = 100
    resync_seconds: int = 300
    metrics_bind: str = "0.0.0.0:9090"
    # Built-in certificates (off where cert-manager issues them)
    manage_certificates: bool = True
    certificate_propagation_seconds: float = DEFAULT_CERTIFICATE_PROPAGATION_SECONDS
    quota_release_grace_seconds: float = DEFAULT_QUOTA_RELEASE_GRACE_SECONDS

    @property
    def never_touched_namespaces(self) -> list[str]:
        """Namespaces excluded from every webhook: our own, kube-system, and configured ones."""
        return list(dict.fromkeys([self.namespace, "kube-system", *self.excluded_namespaces]))


def _token_lifetime(value: str) -> int:
    seconds = int(value)
    if seconds < 600:
        # The TokenRequest API refuses shorter lifetimes.
        raise argparse.ArgumentTypeError("must be at least 600 seconds")
    return seconds


def _audiences(value: str) -> list[str]:
    audiences = [item.strip() for item in value.split(",") if item.strip()]
    if not audiences:
        raise argparse.ArgumentTypeError("needs at least one audience")
    return audiences


def _audience_list(value: str) -> list[str]:
    """Like ``_audiences``, but empty is allowed (and means the API server's audiences)."""
    return [item.strip() for item in value.split(",") if item.strip()]


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    """Where the service runs and how to reach the API server: every command needs these."""
    parser.add_argument(
        "--namespace",
        default=_env("namespace", os.environ.get("POD_NAMESPACE", DEFAULT_NAMESPACE)),
        help="namespace the service runs in (excluded from admission)",
    )
    parser.add_argument("--kubeconfig", default=_env("kubeconfig", os.environ.get("KUBECONFIG")))
    parser.add_argument("--log-level", default=_env("log-level", "INFO"))


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    add_connection_flags(parser)
    parser.add_argument(
        "--internal-registry",
        default=_env("internal-registry", DEFAULT_INTERNAL_REGISTRY),
        help="host:port of the internal registry service",
    )
    parser.add_argument(
        "--extra-registry-hostname",
        dest="extra_registry_hostnames",
        action="append",
        default=_env_list("extra-registry-hostnames"),
        help="another registry hostname to put in every pull secret (repeatable)",
    )
    parser.add_argument(
        "--excluded-namespace",
        dest="excluded_namespaces",
        action="append",
        default=_env_list("excluded-namespaces"),
        help="a namespace the service never touches (repeatable)",
    )
    parser.add_argument(
        "--token-lifetime-seconds",
        type=_token_lifetime,
        default=_token_lifetime(_env("token-lifetime-seconds", "3600") or "3600"),
        help="lifetime of the bound tokens in pull secrets (600 or more; refreshed at 60%%)",
    )
    parser.add_argument(
        "--token-audiences",
        type=_audiences,
        default=_audiences(_env("token-audiences", ",".join(DEFAULT_TOKEN_AUDIENCES)) or ""),
        help="comma-separated audiences of the tokens in pull secrets: the registry's, never "
        "the API server's, so that a leaked pull secret is no credential for the cluster",
    )


def add_serve_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bind", default=_env("bind", "0.0.0.0:8443"))
    parser.add_argument("--tls-cert-file", type=Path, default=_env("tls-cert-file"))
    parser.add_argument("--tls-key-file", type=Path, default=_env("tls-key-file"))
    parser.add_argument(
        "--ca-file",
        type=Path,
        default=_env("ca-file"),
        help="CA that signed the serving certificate, published as the webhooks' caBundle",
    )
    parser.add_argument(
        "--client-ca-file",
        type=Path,
        default=_env("client-ca-file"),
        help="CA that signs the API server's webhook client certificate (AdmissionConfiguration "
        "kubeConfigFile); when set, admission reviews without such a certificate are refused",
    )
    parser.add_argument(
        "--dev-certs-dir",
        type=Path,
        default=_env("dev-certs-dir"),
        help="generate (or reuse) a CA and serving certificate here; for development only",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=int(_env("threads", "64") or 64),
        help="connections served at once; each TLS connection the API server keeps open "
        "(idle ones too) holds a thread, so keep this above its idle connection pool (25)",
    )
    parser.add_argument(
        "--register",
        action=argparse.BooleanOptionalAction,
        default=_env_bool("register"),
        help="create or update the webhook configurations on start",
    )
    parser.add_argument(
        "--webhook-url",
        default=_env("webhook-url"),
        help="base URL the API server calls (url client config); else the Service is used",
    )
    _add_webhook_names(parser)
    parser.add_argument("--service-port", type=int, default=int(_env("service-port", "443") or 443))
    parser.add_argument(
        "--pushreview-token-audiences",
        type=_audience_list,
        default=_env_list("pushreview-token-audiences"),
        help="comma-separated audiences a PushReview caller's token must be valid for (sent "
        "as TokenReview spec.audiences); empty (the default): the API server's own, i.e. the "
        "registry's ServiceAccount token",
    )


def _add_webhook_names(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--service-name",
        default=_env("service-name", "image-registry-webhook"),
        help="the webhook's Service (its names are in the serving certificate)",
    )
    parser.add_argument(
        "--configuration-name",
        default=_env("configuration-name", "image-registry-webhook"),
        help="name of the Mutating and ValidatingWebhookConfiguration",
    )


def add_certificate_flags(parser: argparse.ArgumentParser) -> None:
    """Flags of the built-in certificate manager."""
    parser.add_argument(
        "--manage-certificates",
        type=parse_bool,
        nargs="?",
        const=True,
        default=parse_bool(_env("manage-certificates", "true") or "true"),
        help="keep the webhook's CA and serving certificate in the Secret "
        "image-registry-webhook-tls and their caBundle in the webhook configurations "
        "(default true; false where cert-manager issues them)",
    )
    parser.add_argument(
        "--certificate-propagation-seconds",
        type=float,
        default=float(
            _env("certificate-propagation-seconds", str(DEFAULT_CERTIFICATE_PROPAGATION_SECONDS))
            or DEFAULT_CERTIFICATE_PROPAGATION_SECONDS
        ),
        help="how long a new caBundle or Secret takes to reach every API server and pod; a "
        "CA rotation waits this long before the new CA signs, and again before the old one "
        "is dropped (default %(default)s)",
    )


def add_controller_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--leader-election",
        action=argparse.BooleanOptionalAction,
        default=(_env("leader-election", "true") or "true").lower() != "false",
    )
    parser.add_argument(
        "--reconcile-workers", type=int, default=int(_env("reconcile-workers", "4") or 4)
    )
    parser.add_argument("--api-qps", type=float, default=float(_env("api-qps", "50") or 50))
    parser.add_argument("--api-burst", type=int, default=int(_env("api-burst", "100") or 100))
    parser.add_argument(
        "--resync-seconds", type=int, default=int(_env("resync-seconds", "300") or 300)
    )
    parser.add_argument("--metrics-bind", default=_env("metrics-bind", "0.0.0.0:9090"))
    parser.add_argument(
        "--quota-release-grace-seconds",
        type=float,
        default=float(
            _env("quota-release-grace-seconds", str(DEFAULT_QUOTA_RELEASE_GRACE_SECONDS))
            or DEFAULT_QUOTA_RELEASE_GRACE_SECONDS
        ),
        help="how long a quota charge without its ImageStream is kept before it is released",
    )
    _add_webhook_names(parser)
    add_certificate_flags(parser)


def from_args(args: argparse.Namespace) -> Settings:
    known = Settings.__dataclass_fields__
    return Settings(**{k: v for k, v in vars(args).items() if k in known})
