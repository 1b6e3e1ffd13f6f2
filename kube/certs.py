"""X.509 helpers: a self-signed CA and certificates it signs, and what a certificate says.

Shared plumbing: a certificate manager keeps a CA and serving certificate with them, a
server makes development ones, and the local control plane its PKI. Keys are ECDSA P-256:
small, fast, and accepted by kube-apiserver and Go's TLS.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_BACKDATE = dt.timedelta(minutes=5)
"""Certificates start this long before they are made, so that a peer whose clock is a
little behind ours does not refuse them as not yet valid."""
DEFAULT_CA_VALIDITY = dt.timedelta(days=3650)
"""For CAs of development tooling (the local control plane), which nothing renews."""
DEFAULT_LEAF_VALIDITY = dt.timedelta(days=365)
"""For leaf certificates of development tooling."""


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, both PEM-encoded."""

    cert_pem: bytes
    key_pem: bytes

    def write(self, cert_path: Path, key_path: Path) -> None:
        cert_path.parent.mkdir(parents=True, exist_ok=True)
        cert_path.write_bytes(self.cert_pem)
        # The key is written owner-only from the first byte, never world-readable.
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self.key_pem)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str, organizations: Iterable[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def new_ca(
    common_name: str,
    *,
    validity: dt.timedelta = DEFAULT_CA_VALIDITY,
    now: dt.datetime | None = None,
) -> KeyPair:
    """Create a self-signed CA certificate, valid for ``validity`` from ``now``."""
    key = _new_key()
    now = now or dt.datetime.now(dt.UTC)
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _san(hosts: Iterable[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def issue(
    ca: KeyPair,
    common_name: str,
    *,
    hosts: Iterable[str] = (),
    organizations: Iterable[str] = (),
    server: bool = True,
    client: bool = False,
    validity: dt.timedelta = DEFAULT_LEAF_VALIDITY,
    now: dt.datetime | None = None,
) -> KeyPair:
    """Issue a leaf certificate signed by ``ca`` for servers (``hosts`` as SANs) or clients,
    valid for ``validity`` from ``now`` but never past the CA's own expiry (a chain is only
    as valid as its CA)."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TypeError("CA key must be an EC key created by new_ca()")
    key = _new_key()
    now = now or dt.datetime.now(dt.UTC)
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organizations))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(min(now + validity, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    hosts = list(hosts)
    if hosts:
        builder = builder.add_extension(_san(hosts), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def new_signing_key() -> tuple[bytes, bytes]:
    """An EC key pair (private PEM, public PEM), e.g. for service-account token signing."""
    key = _new_key()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return _key_pem(key), public


def not_after(cert_pem: bytes) -> dt.datetime:
    """Expiry of a PEM certificate, for renewal decisions."""
    return x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
"""The names a serving certificate carries for callers on the same host (probes, tests)."""


def serving_hosts(service_name: str, namespace: str) -> list[str]:
    """Loopback names plus every in-cluster name of the Service: what a serving certificate
    for a Service names, so that callers by Service, by URL and probes accept it."""
    return [
        *LOOPBACK_HOSTS,
        service_name,
        f"{service_name}.{namespace}",
        f"{service_name}.{namespace}.svc",
        f"{service_name}.{namespace}.svc.cluster.local",
    ]


@dataclass(frozen=True)
class CertificateInfo:
    """What a renewal decision needs to know of one certificate."""

    fingerprint: str
    """SHA-256 of the DER encoding, hex: names the certificate in logs and decisions."""
    not_before: dt.datetime
    not_after: dt.datetime
    hosts: frozenset[str]
    """DNS names and IP addresses of its subjectAltName."""


def split_pem(bundle: bytes) -> list[bytes]:
    """Each certificate of a PEM bundle, in order. Raises ValueError on anything else."""
    return [
        cert.public_bytes(serialization.Encoding.PEM)
        for cert in x509.load_pem_x509_certificates(bundle)
    ]


def describe(cert_pem: bytes) -> CertificateInfo:
    """Fingerprint, validity and names of a PEM certificate. Raises ValueError if it is none."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    hosts: set[str] = set()
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        pass
    else:
        hosts.update(san.get_values_for_type(x509.DNSName))
        hosts.update(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    return CertificateInfo(
        fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        hosts=frozenset(hosts),
    )


def issued_by(cert_pem: bytes, ca_pem: bytes) -> bool:
    """Whether ``ca_pem`` signed ``cert_pem`` (names match and the signature verifies)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem))
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def key_matches(cert_pem: bytes, key_pem: bytes) -> bool:
    """Whether ``key_pem`` is the private key of the certificate ``cert_pem``."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return False
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    return bool(
        cert.public_key().public_bytes(der, spki) == key.public_key().public_bytes(der, spki)
    )
