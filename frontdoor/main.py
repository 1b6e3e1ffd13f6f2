"""The ``frontdoor`` command: the OCI Distribution proxy, served like ``serve`` (gunicorn
over TLS, workers with their own caches, the master summing their metrics)."""

from __future__ import annotations

from typing import Final

from flask import Flask
from kubernetes import client

from frontdoor.access import Access
from frontdoor.blobsizes import BlobSizes
from frontdoor.caches import FrontDoorCaches
from frontdoor.config import FrontDoorConfig
from frontdoor.deleterecords import DeleteRecords
from frontdoor.deletes import ManifestDeletes
from frontdoor.pushes import ManifestPuts
from frontdoor.readonly import ReadOnlySwitch
from frontdoor.reads import ManifestReads
from frontdoor.records import ImageRecords
from frontdoor.routes import FrontDoor, frontdoor_blueprint
from frontdoor.streammemory import StreamMemory, resource_version
from frontdoor.uploads import Uploads
from frontdoor.upstream import Upstream
from kube.client import api_client
from kube.issuerkeys import IssuerKeys, api_fetcher
from kube.resourcequotas import ResourceQuotaClient
from serving.app import create_app
from serving.callerreviews import Authenticator, Authorizer
from serving.config import ServingConfig
from serving.pushjudge import PushJudge
from serving.quotacharge import REQUEST_TIMEOUT, QuotaCharger
from serving.server import serve
from serving.tlsserver import READ_SECONDS, ReadLimits

UPLOAD_WAIT_SECONDS: Final = 600.0
"""How long a client may keep a worker waiting for the bytes of one request body: a layer
upload on a slow link waits for most of its duration (``docker push`` of a large layer
over a 10 Mbit/s link is minutes); the handshake and headers keep the server's limits."""
FRONTDOOR_READ_LIMITS: Final = ReadLimits(
    handshake_seconds=READ_SECONDS, header_seconds=READ_SECONDS, body_seconds=UPLOAD_WAIT_SECONDS
)


def build_frontdoor_app(config: FrontDoorConfig) -> Flask:
    """The app each worker serves: caches of what the push rules and reads use, the
    registry audience's TokenReviews, SubjectAccessReviews, and the upstream registry."""
    api = api_client(config.kubeconfig)
    caches = FrontDoorCaches(api)
    caches.start()
    judge = PushJudge(
        caches, QuotaCharger(ResourceQuotaClient(api, timeout=REQUEST_TIMEOUT), caches.quotas_in)
    )
    audiences = list(config.token_audiences)
    access = Access(
        Authenticator(
            client.AuthenticationV1Api(api),
            audiences=audiences,
            signed=IssuerKeys(api_fetcher(api), audiences).start().signed,
        ),
        Authorizer(client.AuthorizationV1Api(api)),
    )
    upstream = Upstream(config.upstream_registry, config.upstream_ca_file)
    custom = client.CustomObjectsApi(api)
    records = ImageRecords(custom)
    reads = ManifestReads(caches, records)
    sizes = BlobSizes(upstream)
    switch = ReadOnlySwitch(api).start()
    pushes = ManifestPuts(
        judge,
        records,
        upstream,
        config.internal_registry,
        blobs=sizes,
        image_saved=reads.recorded,
        read_only=switch.read_only,
        streams=StreamMemory(
            lambda namespace, name: resource_version(caches.imagestreams.get(f"{namespace}/{name}"))
        ),
        image_cached=lambda digest: digest in caches.images_by_digest(),
    )
    door = FrontDoor(
        access,
        upstream,
        pushes,
        reads=reads,
        uploads=Uploads(judge, upstream, sizes, read_only=switch.read_only),
        deletes=ManifestDeletes(records, DeleteRecords(custom), upstream, caches),
        read_only=switch.refuses,
    )
    return create_app([frontdoor_blueprint(door)], readiness=[caches.not_ready, switch.not_ready])


def run_frontdoor(serving: ServingConfig, config: FrontDoorConfig) -> int:
    """``frontdoor``: the command has checked the upstream registry (``cli.main``) before
    any port is bound; each worker builds its own app."""
    return serve(serving, lambda: build_frontdoor_app(config), read_limits=FRONTDOOR_READ_LIMITS)
