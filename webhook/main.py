"""The ``serve`` command: certificates, the Flask app, gunicorn and self-registration."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from flask import Flask
from kubernetes import client

from kube.client import api_client
from kube.events import EventRecorder, Recorder
from kube.resourcequotas import ResourceQuotaClient
from kube.settings import Settings
from webhook import devcerts, registration
from webhook.admission import imagestreams, policies, serviceaccounts
from webhook.admission.endpoints import (
    MUTATE_SERVICEACCOUNTS,
    VALIDATE_IMAGESTREAMS,
    VALIDATE_POLICIES,
    AdmissionEndpoint,
)
from webhook.admission.imagestreams import PolicyReads, QuotaCharges
from webhook.admission.routes import admission_blueprint
from webhook.app import create_app
from webhook.caches import WebhookCaches
from webhook.httpjson import BodyGate
from webhook.pushreview.auth import Authenticator, Authorizer
from webhook.pushreview.judge import PushJudge, PushReads
from webhook.pushreview.routes import PushAuthorizer, TokenAuthenticator, pushreview_blueprint
from webhook.quotacharge import REQUEST_TIMEOUT, QuotaCharger
from webhook.tlsserver import WebhookServer

log = logging.getLogger(__name__)


class ServingCaches(PolicyReads, PushReads, Protocol):
    """Everything the handlers read, from the watch caches (``WebhookCaches``)."""

    def namespace_labels(self, name: str) -> Mapping[str, str] | None: ...


def assemble_app(
    caches: ServingCaches,
    quota: QuotaCharges,
    authenticator: TokenAuthenticator,
    authorizer: PushAuthorizer,
    recorder: Recorder,
    excluded_namespaces: frozenset[str],
) -> Flask:
    """The endpoints, handlers and Blueprints, given their I/O (so tests can pass fakes)."""
    gate = BodyGate()  # one per worker: both APIs' large bodies count against it
    endpoints = [
        AdmissionEndpoint(
            MUTATE_SERVICEACCOUNTS,
            serviceaccounts.ServiceAccountMutator(caches.namespace_labels, excluded_namespaces),
            mutating=True,
            fail_open=True,
        ),
        AdmissionEndpoint(
            VALIDATE_IMAGESTREAMS,
            imagestreams.ImageStreamValidator(caches, quota),
            mutating=False,
        ),
        AdmissionEndpoint(VALIDATE_POLICIES, policies.validate, mutating=False),
    ]
    push_reviews = pushreview_blueprint(
        PushJudge(caches, quota), authenticator, authorizer, recorder, caches.not_ready, gate
    )
    return create_app(
        [admission_blueprint(endpoints, gate=gate), push_reviews], readiness=[caches.not_ready]
    )


def build_app(settings: Settings) -> Flask:
    """The application each gunicorn worker serves, with its own caches."""
    api = api_client(settings.kubeconfig)
    caches = WebhookCaches(api)
    caches.start()
    return assemble_app(
        caches,
        QuotaCharger(ResourceQuotaClient(api, timeout=REQUEST_TIMEOUT), caches.quotas_in),
        Authenticator(client.AuthenticationV1Api(api)),
        Authorizer(client.AuthorizationV1Api(api)),
        EventRecorder(api, interval=60.0),
        frozenset(settings.never_touched_namespaces),
    )


def _serving_files(settings: Settings) -> tuple[Path, Path, Path | None]:
    if settings.tls_cert_file and settings.tls_key_file:
        return settings.tls_cert_file, settings.tls_key_file, settings.ca_file
    if settings.dev_certs_dir:
        files = devcerts.ensure(
            settings.dev_certs_dir,
            devcerts.serving_hosts(settings.service_name, settings.namespace),
        )
        return files.cert_file, files.key_file, files.ca_file
    raise SystemExit("serve needs TLS: give --tls-cert-file and --tls-key-file, or --dev-certs-dir")


def run_server(settings: Settings) -> int:
    cert_file, key_file, ca_file = _serving_files(settings)

    def register() -> None:
        if not settings.register:
            return
        if ca_file is None:
            raise SystemExit("--register needs --ca-file (the caBundle the API server trusts)")
        mutating, validating = registration.desired_configurations(
            name=settings.configuration_name,
            ca_bundle=ca_file.read_bytes(),
            excluded_namespaces=settings.never_touched_namespaces,
            url=settings.webhook_url,
            service_namespace=settings.namespace,
            service_name=settings.service_name,
            service_port=settings.service_port,
        )
        with api_client(settings.kubeconfig) as api:
            registration.register(api, mutating, validating)

    server = WebhookServer(
        lambda: build_app(settings),
        bind=settings.bind,
        cert_file=str(cert_file),
        key_file=str(key_file),
        workers=settings.workers,
        threads=settings.threads,
        on_ready=register,
        log_level=settings.log_level,
    )
    server.run()
    return 0
