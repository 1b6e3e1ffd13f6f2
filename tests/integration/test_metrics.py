"""Every process serves Prometheus metrics on a plain-HTTP port of their own.

Local stack only: the test reads the processes' loopback ports and the dev certificate.
"""

from __future__ import annotations

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from kube import certs
from tests.integration.support.cluster import ClusterEnv

pytestmark = pytest.mark.local_only

ADMISSIONS = "registry_v2_policy_admission_requests_total"


def samples(page: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(page)
        for s in family.samples
    }


def test_the_server_serves_its_metrics_over_plain_http_and_not_on_the_tls_port(
    cluster: ClusterEnv,
) -> None:
    assert cluster.server_request("GET", "/metrics", as_api_server=False).status == 404
    pages = cluster.metrics_pages()
    assert pages and all("registry_v2_policy_" in page for page in pages)


def test_the_metrics_port_shows_the_workers_counts(cluster: ClusterEnv, namespace: str) -> None:
    """The app counts in the gunicorn workers (two by default) and the master's page sums
    their files: an admission now must show on the port, whichever worker answered it."""
    before = cluster.metric(ADMISSIONS, endpoint="mutate_serviceaccounts")
    cluster.kubectl("create", "serviceaccount", "counted", "-n", namespace)
    assert cluster.metric(ADMISSIONS, endpoint="mutate_serviceaccounts") >= before + 1


def test_the_serving_certificate_expiry_is_the_files(cluster: ClusterEnv) -> None:
    assert cluster.stack is not None
    cert = (cluster.stack.certs_dir / "tls.crt").read_bytes()
    name = "registry_v2_policy_serving_certificate_expiry_timestamp_seconds"
    pages = cluster.metrics_pages()
    expiries = [samples(page)[(name, ())] for page in pages]  # each replica's own files
    assert expiries == [certs.not_after(cert).timestamp()] * len(pages)


def test_the_controller_serves_leader_queue_and_token_metrics(cluster: ClusterEnv) -> None:
    stack = cluster.stack
    assert stack is not None and stack.controller is not None
    url = f"http://127.0.0.1:{stack.controller.ports['metrics']}/metrics"

    def leading() -> bool:
        found = samples(requests.get(url, timeout=5).text)
        key = (
            "registry_v2_policy_leader_election_status",
            (("lease", "image-registry-controller"),),
        )
        return found.get(key) == 1

    cluster.wait(leading, timeout=30, what="the controller's metrics to show it leads")
    page = requests.get(url, timeout=5).text
    for name in (
        'registry_v2_policy_workqueue_depth{name="pull-secrets"}',
        'registry_v2_policy_workqueue_queue_duration_seconds_count{name="quota-usage"}',
        'registry_v2_policy_reconcile_duration_seconds_count{controller="pull-secrets"}',
        "registry_v2_policy_managed_token_earliest_expiry_timestamp_seconds",
    ):
        assert name in page, name
