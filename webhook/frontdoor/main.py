"""The ``frontdoor`` command: the OCI Distribution proxy, served like ``serve`` (gunicorn
over TLS, workers with their own caches, the master summing their metrics)."""

from __future__ import annotations

from typing import Final

from flask import Flask
from kubernetes import client

from kube.client import api_client
from kube.issuerkeys import IssuerKeys, api_fetcher
from kube.resourcequotas import ResourceQuotaClient
from kube.settings import Settings
from webhook.app import create_app
from webhook.caches import PushCaches
from webhook.frontdoor.access import Access
from webhook.frontdoor.blobsizes import BlobSizes
from webhook.frontdoor.pushes import ManifestPuts
from webhook.frontdoor.reads import ManifestReads
from webhook.frontdoor.records import ImageRecords
from webhook.frontdoor.routes import FrontDoor, frontdoor_blueprint
from webhook.frontdoor.uploads import Uploads
from webhook.frontdoor.upstream import Upstream
from webhook.main import serve
from webhook.pushreview.auth import Authenticator, Authorizer
from webhook.pushreview.judge import PushJudge
from webhook.quotacharge import REQUEST_TIMEOUT, QuotaCharger
from webhook.tlsserver import READ_SECONDS, ReadLimits

UPLOAD_WAIT_SECONDS: Final = 600.0
"""How long a client may keep a worker waiting for the bytes of one request body: a layer
upload on a slow link waits for most of its duration (``docker push`` of a large layer
over a 10 Mbit/s link is minutes); the handshake and headers keep the server's limits."""
FRONTDOOR_READ_LIMITS: Final = ReadLimits(
    handshake_seconds=READ_SECONDS, header_seconds=READ_SECONDS, body_seconds=UPLOAD_WAIT_SECONDS
)


def build_frontdoor_app(settings: Settings) -> Flask:
    """The app each worker serves: caches of what the push rules and reads use, the
    registry audience's TokenReviews, SubjectAccessReviews, and the upstream registry."""
    if not settings.upstream_registry:
        raise SystemExit("frontdoor needs --upstream-registry (the registry's https:// URL)")
    api = api_client(settings.kubeconfig)
    caches = PushCaches(api, reads=True)
    caches.start()
    judge = PushJudge(
        caches, QuotaCharger(ResourceQuotaClient(api, timeout=REQUEST_TIMEOUT), caches.quotas_in)
    )
    access = Access(
        Authenticator(
            client.AuthenticationV1Api(api),
            audiences=settings.token_audiences,
            signed=IssuerKeys(api_fetcher(api), settings.token_audiences).start().signed,
        ),
        Authorizer(client.AuthorizationV1Api(api)),
    )
    upstream = Upstream(settings.upstream_registry, settings.upstream_ca_file)
    records = ImageRecords(client.CustomObjectsApi(api))
    reads = ManifestReads(caches, records)
    sizes = BlobSizes(upstream)
    pushes = ManifestPuts(
        judge,
        records,
        upstream,
        settings.internal_registry,
        blobs=sizes,
        image_saved=reads.recorded,
    )
    door = FrontDoor(
        access,
        upstream,
        pushes,
        reads=reads,
        uploads=Uploads(judge, upstream, sizes),
    )
    return create_app([frontdoor_blueprint(door)], readiness=[caches.not_ready])


def run_frontdoor(settings: Settings) -> int:
    return serve(settings, lambda: build_frontdoor_app(settings), read_limits=FRONTDOOR_READ_LIMITS)
