"""The ``serve`` command: certificates, the Flask app, gunicorn and self-registration."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

from flask import Flask
from kubernetes import client

from kube.client import api_client
from kube.events import AggregatingEventRecorder, Recorder
from kube.issuerkeys import IssuerKeys, api_fetcher
from kube.resourcequotas import ResourceQuotaClient
from serving.app import create_app
from serving.callerreviews import Authenticator, Authorizer
from serving.config import ServingConfig
from serving.httpjson import BodyGate
from serving.pushjudge import PushJudge, PushReads
from serving.quotacharge import REQUEST_TIMEOUT, QuotaCharger
from serving.server import serve
from webhook import registration
from webhook.admission import imagestreams, policies, serviceaccounts
from webhook.admission.endpoints import (
    MUTATE_SERVICEACCOUNTS,
    VALIDATE_IMAGESTREAMS,
    VALIDATE_POLICIES,
    AdmissionEndpoint,
)
from webhook.admission.imagelookup import ImageClient
from webhook.admission.imagestreams import ImageLookup, PolicyReads, QuotaCharges
from webhook.admission.routes import admission_blueprint
from webhook.admission.serviceaccounts import ServiceAccountReads
from webhook.caches import WebhookCaches
from webhook.config import WebhookConfig
from webhook.pushreview.routes import PushAuthorizer, TokenAuthenticator, pushreview_blueprint

log = logging.getLogger(__name__)

Obj = dict[str, Any]


class ServingCaches(PolicyReads, PushReads, ServiceAccountReads, Protocol):
    """Everything the handlers read, from the watch caches (``WebhookCaches``)."""


def assemble_app(
    caches: ServingCaches,
    quota: QuotaCharges,
    images: ImageLookup,
    authenticator: TokenAuthenticator,
    authorizer: PushAuthorizer,
    recorder: Recorder,
    excluded_namespaces: frozenset[str],
    *,
    require_client_certificate: bool = False,
) -> Flask:
    """The endpoints, handlers and Blueprints, given their I/O (so tests can pass fakes)."""
    gate = BodyGate()  # one per worker: both APIs' large bodies count against it
    endpoints = [
        AdmissionEndpoint(
            MUTATE_SERVICEACCOUNTS,
            serviceaccounts.ServiceAccountMutator(caches, excluded_namespaces),
            mutating=True,
            fail_open=True,
        ),
        AdmissionEndpoint(
            VALIDATE_IMAGESTREAMS,
            imagestreams.ImageStreamValidator(caches, quota, images),
            mutating=False,
        ),
        AdmissionEndpoint(VALIDATE_POLICIES, policies.validate, mutating=False),
    ]
    push_reviews = pushreview_blueprint(
        PushJudge(caches, quota), authenticator, authorizer, recorder, caches.not_ready, gate
    )
    admission = admission_blueprint(
        endpoints, gate=gate, require_client_certificate=require_client_certificate
    )
    return create_app([admission, push_reviews], readiness=[caches.not_ready])


def pushreview_authenticator(api: client.ApiClient, config: WebhookConfig) -> Authenticator:
    """Reviews PushReview callers' tokens for ``--pushreview-token-audiences``; tokens the
    API server signed for them are never rate-limited."""
    audiences = list(config.pushreview_token_audiences)
    return Authenticator(
        client.AuthenticationV1Api(api),
        audiences=audiences,
        signed=IssuerKeys(api_fetcher(api), audiences).start().signed,
    )


def pushreview_recorder(api: client.ApiClient) -> AggregatingEventRecorder:
    """PushDenied Events, aggregated and written by their own thread (started here, in
    the worker: threads do not survive gunicorn's fork)."""
    return AggregatingEventRecorder(client.CoreV1Api(api)).start()


def build_app(config: WebhookConfig, *, require_client_certificate: bool) -> Flask:
    """The application each gunicorn worker serves, with its own caches (the worker takes
    connections once they have synced: ``serving.tlsserver``)."""
    api = api_client(config.kubeconfig)
    caches = WebhookCaches(api)
    caches.start()
    return assemble_app(
        caches,
        QuotaCharger(ResourceQuotaClient(api, timeout=REQUEST_TIMEOUT), caches.quotas_in),
        ImageClient(client.CustomObjectsApi(api)),
        pushreview_authenticator(api, config),
        Authorizer(client.AuthorizationV1Api(api)),
        pushreview_recorder(api),
        frozenset(config.excluded_namespaces),
        require_client_certificate=require_client_certificate,
    )


def desired_configurations(config: WebhookConfig, ca_bundle: bytes) -> tuple[Obj, Obj]:
    """What `serve --register` writes and `webhook-configurations` prints."""
    return registration.desired_configurations(
        name=config.configuration_name,
        ca_bundle=ca_bundle,
        excluded_namespaces=list(config.excluded_namespaces),
        url=config.webhook_url,
        service_namespace=config.namespace,
        service_name=config.service_name,
        service_port=config.service_port,
    )


def print_webhook_configurations(config: WebhookConfig) -> int:
    ca_bundle = config.ca_file.read_bytes() if config.ca_file else b""
    print(registration.render_manifest(*desired_configurations(config, ca_bundle)), end="")
    return 0


def run_server(serving: ServingConfig, config: WebhookConfig) -> int:
    """``serve``: in a process whose ``PROMETHEUS_MULTIPROC_DIR`` names a fresh directory
    (``cli.main`` sets it up, ``serving.workermetrics.shared_directory``)."""

    def register(dev_ca_file: Path | None) -> None:
        if not config.register:
            return
        # Development certificates bring their CA; given files come with --ca-file.
        ca_file = dev_ca_file or config.ca_file
        if ca_file is None:
            raise SystemExit("--register needs --ca-file (the caBundle the API server trusts)")
        mutating, validating = desired_configurations(config, ca_file.read_bytes())
        with api_client(config.kubeconfig) as api:
            registration.register(api, mutating, validating)

    require_client_certificate = serving.client_ca_file is not None
    return serve(
        serving,
        lambda: build_app(config, require_client_certificate=require_client_certificate),
        on_listening=register,
    )
