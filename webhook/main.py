"""The ``serve`` command: certificates, the Flask app, gunicorn and self-registration."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

from flask import Flask
from kubernetes import client

from kube.client import api_client
from kube.events import AggregatingEventRecorder, Recorder
from kube.images import ImageClient
from kube.issuerkeys import IssuerKeys, api_fetcher
from kube.resourcequotas import ResourceQuotaClient
from kube.settings import Settings
from serving.app import create_app
from serving.caches import WebhookCaches
from serving.callerreviews import Authenticator, Authorizer
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
from webhook.admission.imagestreams import ImageLookup, PolicyReads, QuotaCharges
from webhook.admission.routes import admission_blueprint
from webhook.admission.serviceaccounts import ServiceAccountReads
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


def pushreview_authenticator(api: client.ApiClient, settings: Settings) -> Authenticator:
    """Reviews PushReview callers' tokens for ``--pushreview-token-audiences``; tokens the
    API server signed for them are never rate-limited."""
    audiences = settings.pushreview_token_audiences
    return Authenticator(
        client.AuthenticationV1Api(api),
        audiences=audiences,
        signed=IssuerKeys(api_fetcher(api), audiences).start().signed,
    )


def pushreview_recorder(api: client.ApiClient) -> AggregatingEventRecorder:
    """PushDenied Events, aggregated and written by their own thread (started here, in
    the worker: threads do not survive gunicorn's fork)."""
    return AggregatingEventRecorder(client.CoreV1Api(api)).start()


def build_app(settings: Settings) -> Flask:
    """The application each gunicorn worker serves, with its own caches (the worker takes
    connections once they have synced: ``serving.tlsserver``)."""
    api = api_client(settings.kubeconfig)
    caches = WebhookCaches(api)
    caches.start()
    return assemble_app(
        caches,
        QuotaCharger(ResourceQuotaClient(api, timeout=REQUEST_TIMEOUT), caches.quotas_in),
        ImageClient(client.CustomObjectsApi(api)),
        pushreview_authenticator(api, settings),
        Authorizer(client.AuthorizationV1Api(api)),
        pushreview_recorder(api),
        frozenset(settings.never_touched_namespaces),
        require_client_certificate=settings.client_ca_file is not None,
    )


def desired_configurations(settings: Settings, ca_bundle: bytes) -> tuple[Obj, Obj]:
    """What `serve --register` writes and `webhook-configurations` prints."""
    return registration.desired_configurations(
        name=settings.configuration_name,
        ca_bundle=ca_bundle,
        excluded_namespaces=settings.never_touched_namespaces,
        url=settings.webhook_url,
        service_namespace=settings.namespace,
        service_name=settings.service_name,
        service_port=settings.service_port,
    )


def print_webhook_configurations(settings: Settings) -> int:
    ca_bundle = settings.ca_file.read_bytes() if settings.ca_file else b""
    print(registration.render_manifest(*desired_configurations(settings, ca_bundle)), end="")
    return 0


def run_server(settings: Settings) -> int:
    """``serve``: in a process whose ``PROMETHEUS_MULTIPROC_DIR`` names a fresh directory
    (``cli.main`` sets it up, ``serving.workermetrics.shared_directory``)."""

    def register(ca_file: Path | None) -> None:
        if not settings.register:
            return
        if ca_file is None:
            raise SystemExit("--register needs --ca-file (the caBundle the API server trusts)")
        mutating, validating = desired_configurations(settings, ca_file.read_bytes())
        with api_client(settings.kubeconfig) as api:
            registration.register(api, mutating, validating)

    return serve(settings, lambda: build_app(settings), on_listening=register)
