from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509

from kube import certs
from serving import devcerts


def test_issued_certificate_is_signed_by_the_ca_and_names_every_host() -> None:
    ca = certs.new_ca("test-ca")
    leaf = certs.issue(ca, "svc", hosts=["127.0.0.1", "svc.ns.svc", "svc.ns.svc"])
    cert = x509.load_pem_x509_certificate(leaf.cert_pem)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    cert.verify_directly_issued_by(ca_cert)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["svc.ns.svc"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]


def test_dev_certs_are_reused_while_valid(tmp_path: Path) -> None:
    hosts = certs.serving_hosts("svc", "ns")
    first = devcerts.ensure(tmp_path, hosts)
    pem = first.cert_file.read_bytes()
    second = devcerts.ensure(tmp_path, hosts)
    assert second.cert_file.read_bytes() == pem
    assert (first.key_file.stat().st_mode & 0o777) == 0o600


T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def test_a_leaf_never_outlives_its_ca() -> None:
    ca = certs.new_ca("short-ca", validity=dt.timedelta(days=10), now=T0)
    leaf = certs.issue(ca, "svc", validity=dt.timedelta(days=90), now=T0)
    assert (
        certs.not_after(leaf.cert_pem) == certs.not_after(ca.cert_pem) == T0 + dt.timedelta(days=10)
    )


def test_describe_names_validity_hosts_and_a_stable_fingerprint() -> None:
    ca = certs.new_ca("ca", now=T0)
    leaf = certs.issue(ca, "svc", hosts=["svc.ns.svc", "::1"], validity=dt.timedelta(1), now=T0)
    info = certs.describe(leaf.cert_pem)
    assert info.not_after == T0 + dt.timedelta(days=1)
    assert info.not_before < T0
    assert info.hosts == {"svc.ns.svc", "::1"}
    assert info.fingerprint == certs.describe(leaf.cert_pem).fingerprint
    assert info.fingerprint != certs.describe(ca.cert_pem).fingerprint


def test_issued_by_and_key_matches_tell_pairs_apart() -> None:
    ca, other = certs.new_ca("ca"), certs.new_ca("ca")  # same name, different keys
    leaf = certs.issue(ca, "svc")
    assert certs.issued_by(leaf.cert_pem, ca.cert_pem)
    assert not certs.issued_by(leaf.cert_pem, other.cert_pem)
    assert not certs.issued_by(b"garbage", ca.cert_pem)
    assert certs.key_matches(leaf.cert_pem, leaf.key_pem)
    assert not certs.key_matches(leaf.cert_pem, ca.key_pem)
    assert not certs.key_matches(leaf.cert_pem, b"garbage")


def test_split_pem_keeps_order_and_refuses_garbage() -> None:
    first, second = certs.new_ca("a"), certs.new_ca("b")
    assert certs.split_pem(first.cert_pem + second.cert_pem) == [first.cert_pem, second.cert_pem]
    with pytest.raises(ValueError):
        certs.split_pem(b"not a certificate")
