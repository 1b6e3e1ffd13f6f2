"""The serving certificate's expiry, as a gauge read from the file at each scrape."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

from prometheus_client import CollectorRegistry

from kube import certs
from serving.certexpiry import ExpiryCollector, expiry_reader

GAUGE = "registry_v2_policy_serving_certificate_expiry_timestamp_seconds"


def write_certificate(path: Path, days: int) -> float:
    validity = dt.timedelta(days=days)
    pair = certs.issue(certs.new_ca("test-ca"), "server", hosts=["localhost"], validity=validity)
    path.write_bytes(pair.cert_pem)
    return certs.not_after(pair.cert_pem).timestamp()


def test_the_gauge_follows_the_file_a_rotation_replaces(tmp_path: Path) -> None:
    cert_file = tmp_path / "tls.crt"
    first = write_certificate(cert_file, days=30)
    registry = CollectorRegistry()
    registry.register(ExpiryCollector(cert_file))
    assert registry.get_sample_value(GAUGE) == first
    renewed = write_certificate(cert_file, days=90)
    assert renewed > first
    assert registry.get_sample_value(GAUGE) == renewed


def test_an_unreadable_file_is_not_a_number(tmp_path: Path) -> None:
    assert math.isnan(expiry_reader(tmp_path / "missing.crt")())
    garbage = tmp_path / "garbage.crt"
    garbage.write_text("not a certificate")
    assert math.isnan(expiry_reader(garbage)())
