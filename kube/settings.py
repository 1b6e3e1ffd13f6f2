"""Settings of the server and controllers, from flags with environment-variable defaults.

Every flag ``--some-flag`` can also be set as ``REGISTRY_WEBHOOK_SOME_FLAG``; flags win
(``kube.flags``). The defaults are the ``Settings`` field defaults, so code that builds
``Settings()`` and the command line agree.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any

from kube.flags import Flag, add_flags, bind_address, resolve
from quota.pullsecrets.names import DEFAULT_TOKEN_AUDIENCES

DEFAULT_NAMESPACE = "image-registry-system"
DEFAULT_INTERNAL_REGISTRY = "image-registry.image-registry-system.svc:5000"
DEFAULT_QUOTA_RELEASE_GRACE_SECONDS = 35.0
"""A charge is released only after its gap outlasts the slowest admission chain: the API
server allows a webhook up to 30 s, so a create admitted (and charged) now may be stored
that much later; 5 s more for the watch to bring it to the reconciler."""


DEFAULT_BIND = "0.0.0.0:8443"
DEFAULT_FRONTDOOR_BIND = "0.0.0.0:5000"
"""The registry's port, as the internal service ``image-registry...svc:5000`` names it."""
"""The TLS port of admission and PushReview: the manifests' container port ``https``."""
DEFAULT_METRICS_BIND_ADDRESS = ":8080"
"""Plain-HTTP Prometheus metrics of either process: kubebuilder's long-standing default
and the manifests' container port ``metrics``."""
DEFAULT_HEALTH_PROBE_BIND_ADDRESS = ":8081"
"""The controller's plain-HTTP ``/healthz`` and ``/readyz``: kubebuilder's default and the
manifests' container port ``health``."""
DEFAULT_WORKERS = 2
"""Two worker processes per pod, so the server uses two cores: one worker is one GIL, and
gunicorn's own parsing takes 30-45 % of it. Measured (``bench capacity``, same run, same
load generator): 0.3-0.4x the best bare Flask stack with one worker, 0.65-0.8x with two.
Each keeps its own caches (twice the watches and memory); the master sums their metrics."""
DEFAULT_THREADS = 64
"""Requests served at once per worker: above the API server's idle webhook connection pool
(25). Idle connections hold no thread (the poller keeps them), so fewer would do; measured with
two workers (``bench capacity``, one round, same run), 16 and 64 gave the same capacity
within the noise (0.77x vs 0.64x the bare stack on the mutating path, 0.74x vs 0.72x on
the validating one), and 64 keeps room for reviews waiting on the API server (quota
charges, TokenReviews)."""
DEFAULT_TOKEN_LIFETIME_SECONDS = 3600
"""One hour, the TokenRequest API's own default."""
MIN_TOKEN_LIFETIME_SECONDS = 600
"""The TokenRequest API refuses shorter lifetimes."""
DEFAULT_KUBE_API_QPS = 50.0
DEFAULT_KUBE_API_BURST = 100
"""The controller's client-side limit (client-go's 5/10 is far too low for one write per
ServiceAccount); docs/benchmarks.md measures what it costs."""
DEFAULT_RECONCILE_WORKERS = 4
DEFAULT_RESYNC_SECONDS = 300
"""Every object is reconciled again this often even without a change (controller-runtime's
SyncPeriod is 10 h; ours is short because token refreshes are time-driven)."""
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_CERTIFICATE_PROPAGATION_SECONDS = 180.0
"""How long a certificate change takes to reach every reader: the kubelet updates a Secret
volume within its sync period (1 min) plus its watch's delay, and the API servers see a
webhook configuration through their watch within seconds; three minutes leaves room for a
busy node. The certificate manager waits this long between the steps of a CA rotation."""
LOG_FORMATS = ("json", "text")
DEFAULT_LOG_FORMAT = "json"
"""One JSON object per line, what a log pipeline parses without glue."""


@dataclass
class Settings:
    """Everything the runtime needs to know about where it runs and how to behave."""

    namespace: str = DEFAULT_NAMESPACE
    kubeconfig: str | None = None
    log_level: str = "INFO"
    log_format: str = DEFAULT_LOG_FORMAT
    metrics_bind_address: str = DEFAULT_METRICS_BIND_ADDRESS
    # Serving
    bind: str = DEFAULT_BIND
    tls_cert_file: Path | None = None
    tls_private_key_file: Path | None = None
    ca_file: Path | None = None
    client_ca_file: Path | None = None
    dev_certs_dir: Path | None = None
    # gunicorn worker processes: each runs its own caches (watches); the master serves
    # their metrics, summed (bench capacity measures what a second one buys).
    workers: int = DEFAULT_WORKERS
    threads: int = DEFAULT_THREADS
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
    token_lifetime_seconds: int = DEFAULT_TOKEN_LIFETIME_SECONDS
    token_audiences: list[str] = field(default_factory=lambda: list(DEFAULT_TOKEN_AUDIENCES))
    # Controller
    leader_elect: bool = True
    health_probe_bind_address: str = DEFAULT_HEALTH_PROBE_BIND_ADDRESS
    reconcile_workers: int = DEFAULT_RECONCILE_WORKERS
    kube_api_qps: float = DEFAULT_KUBE_API_QPS
    kube_api_burst: int = DEFAULT_KUBE_API_BURST
    resync_seconds: int = DEFAULT_RESYNC_SECONDS
    # Built-in certificates (off where cert-manager issues them)
    manage_certificates: bool = True
    certificate_propagation_seconds: float = DEFAULT_CERTIFICATE_PROPAGATION_SECONDS
    quota_release_grace_seconds: float = DEFAULT_QUOTA_RELEASE_GRACE_SECONDS
    # Front door and controller: the registry behind the front door
    upstream_registry: str | None = None
    upstream_ca_file: Path | None = None

    @property
    def never_touched_namespaces(self) -> list[str]:
        """Namespaces excluded from every webhook: our own, kube-system, and configured ones."""
        return list(dict.fromkeys([self.namespace, "kube-system", *self.excluded_namespaces]))


# --- value parsers: each refuses with a message that says what it expects ----------------


def _number(
    convert: Callable[[str], Any], kind: str, minimum: float, maximum: float | None = None
) -> Callable[[str], Any]:
    """A parser of ``kind`` numbers in ``[minimum, maximum]``."""
    bounds = f"at least {minimum:g}" if maximum is None else f"{minimum:g} to {maximum:g}"

    def parse(value: str) -> Any:
        try:
            number = convert(value.strip())
            if not math.isfinite(number):
                raise ValueError(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}; got {value!r}") from None
        if number < minimum or (maximum is not None and number > maximum):
            raise argparse.ArgumentTypeError(f"must be {bounds}; got {value!r}")
        return number

    return parse


def _positive_float(value: str) -> float:
    number: float = _number(float, "a number", 0)(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0; got {value!r}")
    return number


_positive_int = _number(int, "an integer", 1)
_non_negative_float = _number(float, "a number", 0)
_port = _number(int, "a port number", 1, 65535)
_token_lifetime = _number(int, "a number of seconds", MIN_TOKEN_LIFETIME_SECONDS)


def _log_format(value: str) -> str:
    if value not in LOG_FORMATS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(LOG_FORMATS)}; got {value!r}")
    return value


def _log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(LOG_LEVELS)}; got {value!r}")
    return level


def _audiences(value: str) -> list[str]:
    audiences = _audience_list(value)
    if not audiences:
        raise argparse.ArgumentTypeError("needs at least one audience")
    return audiences


def _audience_list(value: str) -> list[str]:
    """Like ``_audiences``, but empty is allowed (and means the API server's audiences)."""
    return [item.strip() for item in value.split(",") if item.strip()]


def _default(dest: str) -> Any:
    spec = Settings.__dataclass_fields__[dest]
    if spec.default_factory is not MISSING:
        return spec.default_factory()
    return spec.default


def _flag(name: str, help: str, **kwargs: Any) -> Flag:
    """A flag whose default is the ``Settings`` field of the same name (or ``dest``)."""
    dest = kwargs.pop("dest", name.replace("-", "_"))
    return Flag(name, help, _default(dest), dest=dest, **kwargs)


# --- the flags ------------------------------------------------------------------------------

CONNECTION_FLAGS = (
    _flag(
        "namespace",
        "namespace the service runs in (never admitted nor reconciled)",
        env=("REGISTRY_WEBHOOK_NAMESPACE", "POD_NAMESPACE"),
    ),
    _flag(
        "kubeconfig",
        "kubeconfig file to reach the API server; unset: the in-cluster config",
        env=("REGISTRY_WEBHOOK_KUBECONFIG", "KUBECONFIG"),
    ),
    _flag("log-level", f"lowest level logged: {', '.join(LOG_LEVELS)}", parse=_log_level),
    _flag(
        "log-format",
        "json: one JSON object per line, for a log pipeline; text: for people",
        parse=_log_format,
        metavar="{" + ",".join(LOG_FORMATS) + "}",
    ),
)

COMMON_FLAGS = (
    *CONNECTION_FLAGS,
    _flag("internal-registry", "host:port of the internal registry service"),
    _flag(
        "extra-registry-hostname",
        "another registry hostname to put in every pull secret (repeatable)",
        dest="extra_registry_hostnames",
        repeatable=True,
        env=("REGISTRY_WEBHOOK_EXTRA_REGISTRY_HOSTNAMES",),
    ),
    _flag(
        "excluded-namespace",
        "a namespace the service never touches (repeatable)",
        dest="excluded_namespaces",
        repeatable=True,
        env=("REGISTRY_WEBHOOK_EXCLUDED_NAMESPACES",),
    ),
    _flag(
        "token-lifetime-seconds",
        f"lifetime of the bound tokens in pull secrets ({MIN_TOKEN_LIFETIME_SECONDS} or more; "
        "refreshed at 60% of it)",
        parse=_token_lifetime,
    ),
    _flag(
        "token-audiences",
        "comma-separated audiences of the tokens in pull secrets: the registry's, never the "
        "API server's, so that a leaked pull secret is no credential for the cluster",
        parse=_audiences,
    ),
)

METRICS_FLAGS = (
    _flag(
        "metrics-bind-address",
        "host:port of the plain-HTTP Prometheus /metrics; 0 turns it off",
        parse=bind_address,
        deprecated=("--metrics-bind",),
    ),
)

WEBHOOK_NAME_FLAGS = (
    _flag(
        "service-name",
        "Service in front of the server: the webhook configurations' target and the names "
        "in the serving certificate",
    ),
    _flag("configuration-name", "name of the two webhook configurations"),
)

SERVE_FLAGS = (
    _flag("bind", "host:port of the TLS server: admission, PushReview, /healthz, /readyz"),
    _flag("tls-cert-file", "serving certificate (PEM), with its chain", parse=Path),
    _flag(
        "tls-private-key-file",
        "private key (PEM) of --tls-cert-file",
        parse=Path,
        deprecated=("--tls-key-file",),
    ),
    _flag(
        "ca-file",
        "CA that signed the serving certificate, published as the webhooks' caBundle",
        parse=Path,
    ),
    _flag(
        "client-ca-file",
        "CA that signs the API server's webhook client certificate (AdmissionConfiguration "
        "kubeConfigFile); when set, admission reviews without such a certificate are refused",
        parse=Path,
    ),
    _flag(
        "dev-certs-dir",
        "generate (or reuse) a CA and serving certificate here; for development only",
        parse=Path,
    ),
    _flag(
        "workers",
        "gunicorn worker processes, each on a core of its own; each keeps its own caches "
        "(its own watches on the API server) and takes connections once they have synced",
        parse=_positive_int,
    ),
    _flag(
        "threads",
        "requests each worker serves at once; a connection holds a thread only while a "
        "request is on it (and up to 5 s after its TLS handshake), idle ones none",
        parse=_positive_int,
    ),
    _flag(
        "register",
        "create or update the webhook configurations on start (development: in a cluster "
        "the manifests install them)",
        boolean=True,
        deprecated=("--no-register",),
    ),
    _flag(
        "webhook-url",
        "base URL the API server calls (url client config); unset: the Service",
    ),
    *WEBHOOK_NAME_FLAGS,
    _flag("service-port", "port of that Service", parse=_port),
    _flag(
        "pushreview-token-audiences",
        "comma-separated audiences a PushReview caller's token must be valid for (sent as "
        "TokenReview spec.audiences); empty: the API server's own, i.e. the registry's "
        "ServiceAccount token",
        parse=_audience_list,
    ),
)

FRONTDOOR_SERVING_FLAGS = (
    "tls-cert-file",
    "tls-private-key-file",
    "dev-certs-dir",
    "workers",
    "threads",
)
"""How the front door serves: as ``serve`` does (its own TLS files, gunicorn processes)."""

UPSTREAM_FLAGS = (
    _flag(
        "upstream-registry",
        "https:// (or http:// on loopback) base URL of the registry the front door stands "
        "in front of; clients reach it only through the front door. The controller deletes "
        "from it the tags no ImageStream holds (unset there: registry tags are left alone)",
    ),
    _flag(
        "upstream-ca-file",
        "CA bundle (PEM) that signed the upstream registry's certificate; unset: the system's",
        parse=Path,
    ),
)
"""The registry behind the front door: the front door forwards to it, and the controller
keeps its tags to the ImageStreams'."""

FRONTDOOR_FLAGS = (
    Flag(
        "bind",
        "host:port of the TLS server: the registry API (/v2/), its token endpoint, /healthz",
        DEFAULT_FRONTDOOR_BIND,
    ),
    *(flag for flag in SERVE_FLAGS if flag.name in FRONTDOOR_SERVING_FLAGS),
    *UPSTREAM_FLAGS,
)

CONTROLLER_FLAGS = (
    _flag(
        "leader-elect",
        "run the reconcilers only while holding the Lease, so that one replica of several writes",
        boolean=True,
        deprecated=("--leader-election", "--no-leader-election"),
    ),
    _flag(
        "health-probe-bind-address",
        "host:port of the plain-HTTP /healthz and /readyz; 0 turns them off",
        parse=bind_address,
    ),
    _flag(
        "reconcile-workers",
        "ServiceAccounts reconciled at once",
        parse=_positive_int,
    ),
    _flag(
        "kube-api-qps",
        "sustained API requests per second the reconcilers may make",
        parse=_positive_float,
        deprecated=("--api-qps",),
    ),
    _flag(
        "kube-api-burst",
        "API requests the reconcilers may make at once above --kube-api-qps",
        parse=_positive_int,
        deprecated=("--api-burst",),
    ),
    _flag(
        "resync-seconds",
        "seconds after which every object is reconciled again, changed or not",
        parse=_positive_int,
    ),
    _flag(
        "quota-release-grace-seconds",
        "how long a quota charge without its ImageStream is kept before it is released",
        parse=_non_negative_float,
    ),
    *WEBHOOK_NAME_FLAGS,
    _flag(
        "manage-certificates",
        "keep the webhook's CA and serving certificate in the Secret image-registry-webhook-tls "
        "and their caBundle in the webhook configurations (false where cert-manager issues "
        "them)",
        boolean=True,
    ),
    _flag(
        "certificate-propagation-seconds",
        "how long a new caBundle or Secret takes to reach every API server and pod; a CA "
        "rotation waits this long before the new CA signs, and again before the old one is "
        "dropped",
        parse=_positive_float,
    ),
    *UPSTREAM_FLAGS,
)


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    """Where the service runs, how to reach the API server and how to log: every command
    needs these (``certs rotate`` needs no more)."""
    add_flags(parser, CONNECTION_FLAGS)


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    add_flags(parser, COMMON_FLAGS)


def add_serve_flags(parser: argparse.ArgumentParser) -> None:
    add_flags(parser, SERVE_FLAGS)


def add_metrics_flags(parser: argparse.ArgumentParser) -> None:
    add_flags(parser, METRICS_FLAGS)


def add_frontdoor_flags(parser: argparse.ArgumentParser) -> None:
    add_flags(parser, FRONTDOOR_FLAGS)


def add_controller_flags(parser: argparse.ArgumentParser) -> None:
    add_flags(parser, CONTROLLER_FLAGS)


def from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Settings:
    """The settings of a parsed command line, flags left out taken from ``environ``
    (default: the process environment); raises ``kube.flags.FlagError`` on a bad variable."""
    resolve(args, os.environ if environ is None else environ)
    known = Settings.__dataclass_fields__
    return Settings(**{k: v for k, v in vars(args).items() if k in known})
