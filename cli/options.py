"""Every flag of the command, declared once, grouped by what it configures, and which
command takes which.

One module for all of them rather than one per process: the processes share many flags
(``serve`` and ``frontdoor`` how they serve, ``frontdoor`` and ``controller`` the upstream
registry and the token audiences), and each declaration (name, help, default, variable,
old names) must exist once so that the two commands agree and the reference
(docs/configuration.md) lists it once per command. ``COMMAND_FLAGS`` says what each command
accepts; a flag of another command is an error there.

A default lives beside the component that uses it (``serving.config``, ``webhook.config``,
``frontdoor.config``, ``controller.config`` and the reconcilers); the few that two
processes share, which may not import each other, live here: the command is the one place
that knows them all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from cli import values
from cli.flags import Flag
from cli.logs import DEFAULT_LOG_FORMAT, DEFAULT_LOG_LEVEL, LOG_FORMATS, LOG_LEVELS
from controller import config as controller_config
from controller.certificates.reconciler import DEFAULT_CERTIFICATE_PROPAGATION_SECONDS
from controller.imageprune import config as prune_config
from controller.quotausage.reconciler import DEFAULT_QUOTA_RELEASE_GRACE_SECONDS
from frontdoor import config as frontdoor_config
from kube.listener import DEFAULT_HEALTH_PROBE_BIND_ADDRESS, DEFAULT_METRICS_BIND_ADDRESS
from nodeca import config as nodeca_config
from quota.pullsecrets.names import DEFAULT_INTERNAL_HOSTNAMES, DEFAULT_TOKEN_AUDIENCES
from serving.config import DEFAULT_THREADS, DEFAULT_WORKERS
from webhook import config as webhook_config

DEFAULT_NAMESPACE: Final = "image-registry-system"
"""Where the service runs (manifests/base): in a pod, ``POD_NAMESPACE`` says so."""
ALWAYS_EXCLUDED_NAMESPACES: Final = ("kube-system",)
"""Never admitted nor reconciled, besides the service's own: the cluster's own components."""
DEFAULT_INTERNAL_REGISTRY: Final = DEFAULT_INTERNAL_HOSTNAMES[0]
"""The internal registry's Service (the product contract): pull secrets name it (the
controller) and recorded Images are pulled from it (the front door)."""
DEFAULT_SERVICE_NAME: Final = "image-registry-webhook"
"""The Service before ``serve`` (manifests/base/webhook.yaml): the webhook configurations
call it, and the serving certificate names it (``serve`` in development, the controller's
certificate manager in a cluster)."""
DEFAULT_CONFIGURATION_NAME: Final = "image-registry-webhook"
"""Both webhook configurations' name: ``serve`` registers them, the controller keeps their
caBundle."""


def never_touched_namespaces(
    namespace: str, excluded: list[str] | tuple[str, ...]
) -> tuple[str, ...]:
    """Namespaces excluded from every webhook and reconciler: our own, kube-system, and the
    configured ones, each once."""
    return tuple(dict.fromkeys([namespace, *ALWAYS_EXCLUDED_NAMESPACES, *excluded]))


# --- every command: where the service runs, how to reach the API server, how to log -------

GLOBAL_FLAGS = (
    Flag(
        "namespace",
        "namespace the service runs in (never admitted nor reconciled)",
        DEFAULT_NAMESPACE,
        env=("REGISTRY_WEBHOOK_NAMESPACE", "POD_NAMESPACE"),
    ),
    Flag(
        "kubeconfig",
        "kubeconfig file to reach the API server; unset: the in-cluster config, else "
        "~/.kube/config",
        None,
        env=("REGISTRY_WEBHOOK_KUBECONFIG", "KUBECONFIG"),
    ),
    Flag(
        "log-level",
        f"lowest level logged: {', '.join(LOG_LEVELS)}",
        DEFAULT_LOG_LEVEL,
        parse=values.one_of(LOG_LEVELS, upper=True),
    ),
    Flag(
        "log-format",
        "json: one JSON object per line, for a log pipeline; text: for people",
        DEFAULT_LOG_FORMAT,
        parse=values.one_of(LOG_FORMATS),
        metavar="{" + ",".join(LOG_FORMATS) + "}",
    ),
)
"""Accepted before the subcommand and after it."""

# --- what more than one process is told ---------------------------------------------------

EXCLUDED_NAMESPACES = Flag(
    "excluded-namespace",
    "a namespace the service never touches (repeatable)",
    [],
    dest="excluded_namespaces",
    repeatable=True,
    env=("REGISTRY_WEBHOOK_EXCLUDED_NAMESPACES",),
)
METRICS_BIND_ADDRESS = Flag(
    "metrics-bind-address",
    "host:port of the plain-HTTP Prometheus /metrics; 0 turns it off",
    DEFAULT_METRICS_BIND_ADDRESS,
    parse=values.bind_address,
    deprecated=("--metrics-bind",),
)
INTERNAL_REGISTRY = Flag(
    "internal-registry", "host:port of the internal registry service", DEFAULT_INTERNAL_REGISTRY
)
TOKEN_AUDIENCES = Flag(
    "token-audiences",
    "comma-separated audiences of the registry's tokens (those in pull secrets, those the "
    "front door accepts): the registry's, never the API server's, so that a leaked pull "
    "secret is no credential for the cluster",
    DEFAULT_TOKEN_AUDIENCES,
    parse=values.audiences,
)
SERVICE_NAME = Flag(
    "service-name",
    "Service in front of the server: the webhook configurations' target and the names "
    "in the serving certificate",
    DEFAULT_SERVICE_NAME,
)
CONFIGURATION_NAME = Flag(
    "configuration-name", "name of the two webhook configurations", DEFAULT_CONFIGURATION_NAME
)
UPSTREAM_FLAGS = (
    Flag(
        "upstream-registry",
        "https:// (or http:// on loopback) base URL of the registry the front door stands "
        "in front of; clients reach it only through the front door. The controller deletes "
        "from it the tags no ImageStream holds (unset there: registry tags are left alone)",
        None,
        parse=values.registry_url,
    ),
    Flag(
        "upstream-ca-file",
        "CA bundle (PEM) that signed the upstream registry's certificate; unset: the system's",
        None,
        parse=Path,
    ),
)
"""The registry behind the front door: the front door forwards to it, and the controller
keeps its tags to the ImageStreams'."""

# --- how a door is served (serve, frontdoor) ----------------------------------------------

TLS_FLAGS = (
    Flag("tls-cert-file", "serving certificate (PEM), with its chain", None, parse=Path),
    Flag(
        "tls-private-key-file",
        "private key (PEM) of --tls-cert-file",
        None,
        parse=Path,
        deprecated=("--tls-key-file",),
    ),
)
DEV_CERTS_DIR = Flag(
    "dev-certs-dir",
    "generate (or reuse) a CA and serving certificate here; for development only",
    None,
    parse=Path,
)
GUNICORN_FLAGS = (
    Flag(
        "workers",
        "gunicorn worker processes, each on a core of its own; each keeps its own caches "
        "(its own watches on the API server) and takes connections once they have synced",
        DEFAULT_WORKERS,
        parse=values.positive_int,
    ),
    Flag(
        "threads",
        "requests each worker serves at once; a connection holds a thread only while a "
        "request is on it (and up to 5 s after its TLS handshake), idle ones none",
        DEFAULT_THREADS,
        parse=values.positive_int,
    ),
)

# --- serve: the admission webhooks and PushReview -----------------------------------------

SERVE_BIND = Flag(
    "bind",
    "host:port of the TLS server: admission, PushReview, /healthz, /readyz",
    webhook_config.DEFAULT_BIND,
)
CA_FILE = Flag(
    "ca-file",
    "CA that signed the serving certificate, published as the webhooks' caBundle",
    None,
    parse=Path,
)
CLIENT_CA_FILE = Flag(
    "client-ca-file",
    "CA that signs the API server's webhook client certificate (AdmissionConfiguration "
    "kubeConfigFile); when set, admission reviews without such a certificate are refused",
    None,
    parse=Path,
)
REGISTER = Flag(
    "register",
    "create or update the webhook configurations on start (development: in a cluster "
    "the manifests install them)",
    False,
    boolean=True,
    deprecated=("--no-register",),
)
WEBHOOK_URL = Flag(
    "webhook-url", "base URL the API server calls (url client config); unset: the Service", None
)
SERVICE_PORT = Flag(
    "service-port", "port of that Service", webhook_config.DEFAULT_SERVICE_PORT, parse=values.port
)
PUSHREVIEW_TOKEN_AUDIENCES = Flag(
    "pushreview-token-audiences",
    "comma-separated audiences a PushReview caller's token must be valid for (sent as "
    "TokenReview spec.audiences); empty: the API server's own, i.e. the registry's "
    "ServiceAccount token",
    (),
    parse=values.audience_list,
)
WEBHOOK_CONFIGURATION_FLAGS = (
    EXCLUDED_NAMESPACES,
    SERVICE_NAME,
    SERVICE_PORT,
    CONFIGURATION_NAME,
    WEBHOOK_URL,
    CA_FILE,
)
"""What the webhook configurations say: ``serve --register`` writes them,
``webhook-configurations`` prints them."""

# --- frontdoor: the registry API before a registry ----------------------------------------

FRONTDOOR_BIND = Flag(
    "bind",
    "host:port of the TLS server: the registry API (/v2/), its token endpoint, /healthz",
    frontdoor_config.DEFAULT_BIND,
)

# --- controller: the reconcilers ----------------------------------------------------------

PULL_SECRET_FLAGS = (
    INTERNAL_REGISTRY,
    Flag(
        "extra-registry-hostname",
        "another registry hostname to put in every pull secret (repeatable)",
        [],
        dest="extra_registry_hostnames",
        repeatable=True,
        env=("REGISTRY_WEBHOOK_EXTRA_REGISTRY_HOSTNAMES",),
    ),
    EXCLUDED_NAMESPACES,
    Flag(
        "token-lifetime-seconds",
        "lifetime of the bound tokens in pull secrets "
        f"({controller_config.MIN_TOKEN_LIFETIME_SECONDS} or more; refreshed at 60% of it)",
        controller_config.DEFAULT_TOKEN_LIFETIME_SECONDS,
        parse=values.number(
            int, "a number of seconds", controller_config.MIN_TOKEN_LIFETIME_SECONDS
        ),
    ),
    TOKEN_AUDIENCES,
)
CONTROLLER_FLAGS = (
    Flag(
        "node-ca-namespace",
        "namespace of the node-ca DaemonSet (manifests/components/node-ca), where the "
        "ConfigMap image-registry-certificates is kept with the front door's CA for every "
        "registry hostname; unset: nodes are not told to trust the registry",
        None,
    ),
    Flag(
        "leader-elect",
        "run the reconcilers only while holding the Lease, so that one replica of several writes",
        True,
        boolean=True,
        deprecated=("--leader-election", "--no-leader-election"),
    ),
    Flag(
        "health-probe-bind-address",
        "host:port of the plain-HTTP /healthz and /readyz; 0 turns them off",
        DEFAULT_HEALTH_PROBE_BIND_ADDRESS,
        parse=values.bind_address,
    ),
    Flag(
        "reconcile-workers",
        "ServiceAccounts reconciled at once",
        controller_config.DEFAULT_RECONCILE_WORKERS,
        parse=values.positive_int,
    ),
    Flag(
        "kube-api-qps",
        "sustained API requests per second the reconcilers may make",
        controller_config.DEFAULT_KUBE_API_QPS,
        parse=values.positive_float,
        deprecated=("--api-qps",),
    ),
    Flag(
        "kube-api-burst",
        "API requests the reconcilers may make at once above --kube-api-qps",
        controller_config.DEFAULT_KUBE_API_BURST,
        parse=values.positive_int,
        deprecated=("--api-burst",),
    ),
    Flag(
        "resync-seconds",
        "seconds after which every object is reconciled again, changed or not",
        controller_config.DEFAULT_RESYNC_SECONDS,
        parse=values.positive_int,
    ),
    Flag(
        "quota-release-grace-seconds",
        "how long a quota charge no delete explains (a create or push that never landed) "
        "is kept before it is released; a delete frees its charge at once",
        DEFAULT_QUOTA_RELEASE_GRACE_SECONDS,
        parse=values.non_negative_float,
    ),
)
PRUNER_FLAGS = (
    Flag(
        "pruner-image",
        "image of the image-pruner CronJob that imagepruners/cluster configures: this "
        "controller's own (the manifests set it with the container's image); unset: no "
        "CronJob is rendered",
        None,
    ),
    Flag(
        "pruner-upstream-ca-configmap",
        "ConfigMap (in --namespace) holding --upstream-ca-file, mounted in the pruner's pod "
        "at that file's directory, so that it trusts the upstream registry as the "
        "controller does; unset: the pruner is not told a CA file",
        None,
    ),
)
CERTIFICATE_FLAGS = (
    SERVICE_NAME,
    CONFIGURATION_NAME,
    Flag(
        "manage-certificates",
        "keep the webhook's CA and serving certificate in the Secret image-registry-webhook-tls "
        "and their caBundle in the webhook configurations (false where cert-manager issues "
        "them)",
        True,
        boolean=True,
    ),
    Flag(
        "certificate-propagation-seconds",
        "how long a new caBundle or Secret takes to reach every API server and pod; a CA "
        "rotation waits this long before the new CA signs, and again before the old one is "
        "dropped",
        DEFAULT_CERTIFICATE_PROPAGATION_SECONDS,
        parse=values.positive_float,
    ),
)

NODE_CA_FLAGS = (
    Flag(
        "certificates-dir",
        "the mounted ConfigMap image-registry-certificates: one file per registry host "
        "(host..port), its CA bundle",
        nodeca_config.DEFAULT_CERTIFICATES_DIR,
        parse=Path,
    ),
    Flag(
        "hosts-dir",
        "containerd's registry host directory (its registry.config_path) where each host's "
        "ca.crt and hosts.toml are written",
        nodeca_config.DEFAULT_HOSTS_DIR,
        parse=Path,
    ),
    Flag(
        "sync-seconds",
        "how often the mounted files are compared with the host directory",
        nodeca_config.DEFAULT_SYNC_SECONDS,
        parse=values.positive_float,
    ),
)

# --- prune images: oc adm prune images' flags ---------------------------------------------

PRUNE_FLAGS = (
    Flag(
        "confirm",
        "remove what the dry run lists; without it nothing is changed",
        False,
        boolean=True,
    ),
    Flag(
        "keep-tag-revisions",
        "newest history revisions of each tag that are kept",
        prune_config.DEFAULT_KEEP_TAG_REVISIONS,
        parse=values.number(int, "an integer", 0),
    ),
    Flag(
        "keep-younger-than",
        "tag revisions and Images created within this Go duration (60m, 1h30m, 24h) are kept",
        prune_config.DEFAULT_KEEP_YOUNGER_THAN_TEXT,
        parse=values.go_duration,
    ),
    Flag(
        "ignore-invalid-refs",
        "log and skip a workload's image reference that cannot be parsed instead of "
        "refusing to prune",
        False,
        boolean=True,
    ),
    Flag(
        "prune-registry",
        "after pruning, run the registry's garbage collection (registry garbage-collect) "
        "with the front door read-only, and report the bytes freed on disk",
        False,
        boolean=True,
    ),
    Flag(
        "registry-config",
        "the registry's configuration file that --prune-registry collects with (its storage)",
        None,
        parse=Path,
    ),
    Flag(
        "registry-binary",
        "distribution's registry binary that --prune-registry runs (on PATH unless a path)",
        prune_config.DEFAULT_REGISTRY_BINARY,
    ),
    Flag(
        "write-drain-seconds",
        "how long --prune-registry waits, once the front door is read-only, for the writes "
        "it took before to finish: the longest a front door request may take",
        prune_config.DEFAULT_WRITE_DRAIN_SECONDS,
        parse=values.number(float, "a number of seconds", 0),
    ),
    *UPSTREAM_FLAGS,
    INTERNAL_REGISTRY,
)

# --- which command takes which --------------------------------------------------------------

COMMAND_FLAGS: Final[dict[str, tuple[Flag, ...]]] = {
    "serve": (
        SERVE_BIND,
        *TLS_FLAGS,
        CLIENT_CA_FILE,
        DEV_CERTS_DIR,
        *GUNICORN_FLAGS,
        REGISTER,
        *WEBHOOK_CONFIGURATION_FLAGS,
        PUSHREVIEW_TOKEN_AUDIENCES,
        METRICS_BIND_ADDRESS,
    ),
    "webhook-configurations": WEBHOOK_CONFIGURATION_FLAGS,
    "frontdoor": (
        FRONTDOOR_BIND,
        *TLS_FLAGS,
        DEV_CERTS_DIR,
        *GUNICORN_FLAGS,
        *UPSTREAM_FLAGS,
        TOKEN_AUDIENCES,
        INTERNAL_REGISTRY,
        METRICS_BIND_ADDRESS,
    ),
    "controller": (
        *CONTROLLER_FLAGS,
        *PULL_SECRET_FLAGS,
        *CERTIFICATE_FLAGS,
        *UPSTREAM_FLAGS,
        *PRUNER_FLAGS,
        METRICS_BIND_ADDRESS,
    ),
    "node-ca": NODE_CA_FLAGS,
    "certs rotate": (),
    "prune images": PRUNE_FLAGS,
}
"""Each command's own flags, besides ``GLOBAL_FLAGS``: a command refuses the others'."""
