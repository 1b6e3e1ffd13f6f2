from __future__ import annotations

import ipaddress
from pathlib import Path

from cryptography import x509

from webhook import certs, devcerts


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
    hosts = devcerts.serving_hosts("svc", "ns")
    first = devcerts.ensure(tmp_path, hosts)
    pem = first.cert_file.read_bytes()
    second = devcerts.ensure(tmp_path, hosts)
    assert second.cert_file.read_bytes() == pem
    assert (first.key_file.stat().st_mode & 0o777) == 0o600
