"""Each process's typed configuration, built from its parsed and resolved flags.

The command is the one place that turns flags into the configurations the components take
(``ServingConfig``, ``WebhookConfig``, ``FrontDoorConfig``, ``ControllerConfig``); below it,
nothing reads a flag. ``cli.main`` imports this module only once it knows the command,
inside the metrics directory of a door (the controller's reconcilers import
prometheus_client).
"""

from __future__ import annotations

import argparse
import datetime as dt

from cli.options import never_touched_namespaces
from controller.certificates.reconciler import CertificateConfig
from controller.config import ControllerConfig, ReconcileConfig, UpstreamRegistryConfig
from controller.imageprune.config import PruneConfig, UpstreamRegistry, parse_go_duration
from controller.imageprune.plan import Policy
from controller.pullsecrets.reconciler import PullSecretConfig
from frontdoor.config import FrontDoorConfig
from kube.certs import LOOPBACK_HOSTS, serving_hosts
from nodeca.config import NodeCaConfig
from quota.imagepruner.cronjob import PrunerSettings
from quota.pullsecrets.dockerconfig import internal_hostnames
from serving.config import ServingConfig
from webhook.config import WebhookConfig


def _host(address: str) -> str:
    """``address`` without its port, if it has one: ``host``, ``host:5000``, ``[::1]:5000``
    (a bare IPv6 literal has colons and no port)."""
    if address.startswith("[") and "]" in address:
        return address[1 : address.index("]")]
    host, colon, port = address.rpartition(":")
    if colon and port.isdigit() and ":" not in host:
        return host
    return address


def _excluded(args: argparse.Namespace) -> tuple[str, ...]:
    return never_touched_namespaces(args.namespace, args.excluded_namespaces)


def webhook_config(args: argparse.Namespace) -> WebhookConfig:
    """``serve`` and ``webhook-configurations``: what the webhook configurations say, and
    (``serve`` only) registration and PushReview's callers."""
    return WebhookConfig(
        namespace=args.namespace,
        excluded_namespaces=_excluded(args),
        configuration_name=args.configuration_name,
        service_name=args.service_name,
        service_port=args.service_port,
        webhook_url=args.webhook_url,
        ca_file=args.ca_file,
        register=getattr(args, "register", False),
        pushreview_token_audiences=tuple(getattr(args, "pushreview_token_audiences", ())),
        kubeconfig=args.kubeconfig,
    )


def serving_config(args: argparse.Namespace, certificate_hosts: list[str]) -> ServingConfig:
    """How ``args.command`` (``serve`` or ``frontdoor``) serves."""
    return ServingConfig(
        process=args.command,
        bind=args.bind,
        tls_cert_file=args.tls_cert_file,
        tls_private_key_file=args.tls_private_key_file,
        dev_certs_dir=args.dev_certs_dir,
        certificate_hosts=tuple(certificate_hosts),
        client_ca_file=getattr(args, "client_ca_file", None),
        workers=args.workers,
        threads=args.threads,
        metrics_bind_address=args.metrics_bind_address,
        log_level=args.log_level,
    )


def serve_configs(args: argparse.Namespace) -> tuple[ServingConfig, WebhookConfig]:
    """``serve``: its certificate names the Service the API server calls."""
    hosts = serving_hosts(args.service_name, args.namespace)
    return serving_config(args, hosts), webhook_config(args)


def frontdoor_configs(args: argparse.Namespace) -> tuple[ServingConfig, FrontDoorConfig]:
    """``frontdoor``: its development certificate names the internal registry's Service,
    the name its clients use."""
    registry_hosts = [_host(name) for name in internal_hostnames(args.internal_registry)]
    door = FrontDoorConfig(
        upstream_registry=args.upstream_registry,
        upstream_ca_file=args.upstream_ca_file,
        token_audiences=tuple(args.token_audiences),
        internal_registry=args.internal_registry,
        kubeconfig=args.kubeconfig,
    )
    return serving_config(args, [*LOOPBACK_HOSTS, *registry_hosts]), door


def controller_config(args: argparse.Namespace) -> ControllerConfig:
    pull_secrets = PullSecretConfig(
        internal_hostnames=internal_hostnames(args.internal_registry),
        extra_hostnames=tuple(args.extra_registry_hostnames),
        excluded_namespaces=frozenset(_excluded(args)),
        token_lifetime_seconds=args.token_lifetime_seconds,
        token_audiences=tuple(args.token_audiences),
    )
    certificates = None
    if args.manage_certificates:
        certificates = CertificateConfig(
            namespace=args.namespace,
            configuration_name=args.configuration_name,
            hosts=tuple(serving_hosts(args.service_name, args.namespace)),
            propagation=dt.timedelta(seconds=args.certificate_propagation_seconds),
        )
    upstream = None
    if args.upstream_registry:
        upstream = UpstreamRegistryConfig(args.upstream_registry, args.upstream_ca_file)
    pruner = None
    if args.pruner_image:
        pruner = PrunerSettings(
            namespace=args.namespace,
            image=args.pruner_image,
            upstream_registry=args.upstream_registry or None,
            upstream_ca_file=str(args.upstream_ca_file) if args.upstream_ca_file else None,
            upstream_ca_configmap=args.pruner_upstream_ca_configmap or None,
        )
    return ControllerConfig(
        namespace=args.namespace,
        pull_secrets=pull_secrets,
        certificates=certificates,
        upstream=upstream,
        reconcile=ReconcileConfig(
            kube_api_qps=args.kube_api_qps,
            kube_api_burst=args.kube_api_burst,
            reconcile_workers=args.reconcile_workers,
            resync_seconds=args.resync_seconds,
        ),
        quota_release_grace_seconds=args.quota_release_grace_seconds,
        node_ca_namespace=args.node_ca_namespace or None,
        pruner=pruner,
        leader_elect=args.leader_elect,
        health_probe_bind_address=args.health_probe_bind_address,
        metrics_bind_address=args.metrics_bind_address,
        kubeconfig=args.kubeconfig,
    )


def prune_config(args: argparse.Namespace) -> PruneConfig:
    upstream = None
    if args.upstream_registry:
        upstream = UpstreamRegistry(args.upstream_registry, args.upstream_ca_file)
    return PruneConfig(
        policy=Policy(
            keep_tag_revisions=args.keep_tag_revisions,
            keep_younger_than=parse_go_duration(args.keep_younger_than),
        ),
        confirm=args.confirm,
        ignore_invalid_refs=args.ignore_invalid_refs,
        internal_hostnames=internal_hostnames(args.internal_registry),
        upstream=upstream,
        prune_registry=args.prune_registry,
        registry_config=args.registry_config,
        registry_binary=args.registry_binary,
        write_drain_seconds=args.write_drain_seconds,
        kubeconfig=args.kubeconfig,
    )


def node_ca_config(args: argparse.Namespace) -> NodeCaConfig:
    return NodeCaConfig(
        certificates_dir=args.certificates_dir,
        hosts_dir=args.hosts_dir,
        sync_seconds=args.sync_seconds,
    )
