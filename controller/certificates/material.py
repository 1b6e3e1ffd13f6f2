"""The Secret ``image-registry-webhook-tls``: its layout, what the rules learn from it, and
the certificates a plan puts in it.

``tls.crt``, ``tls.key`` and ``ca.crt`` are what cert-manager writes too, so the serving
pods mount either issuer's Secret alike (and mount only those three keys: never the CA's
key, ``ca.key``). ``ca.crt`` holds every CA of the caBundle, so a client that trusts it
keeps trusting the webhook through a rotation. Annotations record what the rules need to
remember across leaders: when the bundle was published, when the serving certificate was
issued, and which ``certs rotate`` request was answered.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from controller.certificates import rules
from kube import certs
from quota.objects import Obj
from quota.timestamps import format_rfc3339, parse_rfc3339

SECRET_NAME = "image-registry-webhook-tls"
TLS_CERT = "tls.crt"
TLS_KEY = "tls.key"
CA_BUNDLE = "ca.crt"
CA_KEY = "ca.key"
MOUNTED_KEYS = (TLS_CERT, TLS_KEY, CA_BUNDLE)
"""The keys the serving pods mount (the Deployment's volume ``items``): never ``ca.key``."""
SECRET_TYPE = "kubernetes.io/tls"

ROTATE_REQUESTED = "image.alauda.io/rotate-requested-at"
"""Set by ``image-registry-webhook certs rotate``: a new CA is wanted now."""
ROTATE_HANDLED = "image.alauda.io/rotate-handled"
"""The ``rotate-requested-at`` value the leader has started a rotation for."""
BUNDLE_SHA256 = "image.alauda.io/ca-bundle-sha256"
BUNDLE_PUBLISHED_AT = "image.alauda.io/ca-bundle-published-at"
"""When the bundle of that digest was last written to the webhook configurations."""
SERVING_ISSUED_AT = "image.alauda.io/serving-issued-at"

CA_COMMON_NAME = "image-registry-webhook-ca"
SERVING_COMMON_NAME = "image-registry-webhook"
LABELS = {
    "app.kubernetes.io/part-of": "registry-v2",
    "app.kubernetes.io/managed-by": "registry-v2-cert-manager",
}


@dataclass(frozen=True)
class Material:
    """The certificates and keys of the Secret; what cannot be read counts as absent."""

    bundle: tuple[bytes, ...]
    """PEM of each CA of ``ca.crt``, in order."""
    ca_key: bytes | None
    serving: certs.KeyPair | None

    @property
    def bundle_pem(self) -> bytes:
        return b"".join(self.bundle)

    def signing_ca(self) -> bytes | None:
        """The bundle CA whose key we hold."""
        if self.ca_key is None:
            return None
        return next((ca for ca in self.bundle if certs.key_matches(ca, self.ca_key)), None)


EMPTY = Material(bundle=(), ca_key=None, serving=None)


def _decode(data: Mapping[str, object], key: str) -> bytes | None:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def read_material(secret: Obj | None) -> Material:
    """The Secret's certificates; a key that is missing or not PEM counts as absent."""
    if secret is None:
        return EMPTY
    data = secret.get("data") or {}
    bundle: tuple[bytes, ...] = ()
    raw_bundle = _decode(data, CA_BUNDLE)
    if raw_bundle:
        try:
            bundle = tuple(certs.split_pem(raw_bundle))
        except ValueError:
            bundle = ()
    cert, key = _decode(data, TLS_CERT), _decode(data, TLS_KEY)
    serving = certs.KeyPair(cert, key) if cert and key and certs.key_matches(cert, key) else None
    return Material(bundle=bundle, ca_key=_decode(data, CA_KEY), serving=serving)


def annotations_of(secret: Obj | None) -> dict[str, str]:
    found = ((secret or {}).get("metadata") or {}).get("annotations") or {}
    return {k: v for k, v in found.items() if isinstance(v, str)}


def bundle_digest(bundle_pem: bytes) -> str:
    return hashlib.sha256(bundle_pem).hexdigest()


def rotation_request(annotations: Mapping[str, str]) -> str | None:
    """The ``certs rotate`` request not answered yet, if any."""
    requested = annotations.get(ROTATE_REQUESTED)
    if requested and requested != annotations.get(ROTATE_HANDLED):
        return requested
    return None


def _certificate(pem: bytes) -> rules.Certificate:
    info = certs.describe(pem)
    return rules.Certificate(info.fingerprint, info.not_before, info.not_after)


def state_of(
    material: Material, annotations: Mapping[str, str], *, bundle_live: bool
) -> rules.State:
    """What the rules need to know; ``bundle_live``: both webhook configurations carry
    exactly this bundle now."""
    bundle = tuple(_certificate(ca) for ca in material.bundle)
    signing_pem = material.signing_ca()
    signing = _certificate(signing_pem).fingerprint if signing_pem else None
    serving = None
    if material.serving is not None:
        leaf = material.serving.cert_pem
        signers = zip(bundle, material.bundle, strict=True)
        issuer = next((c.fingerprint for c, pem in signers if certs.issued_by(leaf, pem)), None)
        serving = rules.Serving(
            certificate=_certificate(leaf),
            issuer=issuer,
            hosts=certs.describe(leaf).hosts,
            issued_at=parse_rfc3339(annotations.get(SERVING_ISSUED_AT)),
        )
    live_since = None
    if bundle_live and annotations.get(BUNDLE_SHA256) == bundle_digest(material.bundle_pem):
        live_since = parse_rfc3339(annotations.get(BUNDLE_PUBLISHED_AT))
    return rules.State(
        bundle=bundle,
        signing=signing,
        serving=serving,
        bundle_live_since=live_since,
        rotation_requested=rotation_request(annotations) is not None,
    )


def carry_out(
    material: Material, plan: rules.Plan, *, hosts: list[str], now: dt.datetime
) -> Material:
    """The certificates after ``plan``: CAs kept, a new CA made, a serving certificate issued."""
    by_fingerprint = {_certificate(ca).fingerprint: ca for ca in material.bundle}
    bundle = [by_fingerprint[f] for f in plan.keep]
    signing_pem, ca_key = material.signing_ca(), material.ca_key
    if plan.new_ca:
        # A distinct name per CA, so that a verifier never mistakes one for the other.
        name = f"{CA_COMMON_NAME}@{int(now.timestamp())}"
        ca = certs.new_ca(name, validity=rules.CA_VALIDITY, now=now)
        bundle.append(ca.cert_pem)
        signing_pem, ca_key = ca.cert_pem, ca.key_pem
    serving = material.serving
    if plan.issue_serving:
        if signing_pem is None or ca_key is None:
            raise ValueError("a plan to issue a serving certificate needs a signing CA")
        serving = certs.issue(
            certs.KeyPair(signing_pem, ca_key),
            SERVING_COMMON_NAME,
            hosts=hosts,
            validity=rules.SERVING_VALIDITY,
            now=now,
        )
    return Material(bundle=tuple(bundle), ca_key=ca_key, serving=serving)


def stamp(
    annotations: Mapping[str, str],
    *,
    before: Material,
    after: Material,
    bundle_live: bool,
    republished: bool,
    answered: str | None,
    now: dt.datetime,
) -> dict[str, str]:
    """The annotations after this reconcile: what the next decision needs to remember."""
    stamped = dict(annotations)
    when = format_rfc3339(now)
    digest = bundle_digest(after.bundle_pem)
    if not bundle_live:
        stamped.pop(BUNDLE_SHA256, None)
        stamped.pop(BUNDLE_PUBLISHED_AT, None)
    elif republished or stamped.get(BUNDLE_SHA256) != digest:
        # Published just now, or found published with no record of since when: count from
        # now, so the wait for the API servers is never cut short.
        stamped[BUNDLE_SHA256] = digest
        stamped[BUNDLE_PUBLISHED_AT] = when
    if after.serving is not None and (
        after.serving != before.serving or parse_rfc3339(stamped.get(SERVING_ISSUED_AT)) is None
    ):
        stamped[SERVING_ISSUED_AT] = when
    if answered is not None:
        stamped[ROTATE_HANDLED] = answered
    return stamped


def secret_body(
    namespace: str, material: Material, annotations: Mapping[str, str], current: Obj | None
) -> Obj:
    """The Secret to write: ``current`` (its resourceVersion, labels, anything else on it)
    with our keys and annotations."""
    body: Obj = dict(current or {})
    metadata = dict(body.get("metadata") or {})
    metadata.update(name=SECRET_NAME, namespace=namespace, annotations=dict(annotations))
    metadata["labels"] = {**(metadata.get("labels") or {}), **LABELS}
    data = dict(body.get("data") or {})
    pieces = {CA_BUNDLE: material.bundle_pem, CA_KEY: material.ca_key}
    if material.serving is not None:
        pieces[TLS_CERT] = material.serving.cert_pem
        pieces[TLS_KEY] = material.serving.key_pem
    for key, value in pieces.items():
        if value:
            data[key] = base64.b64encode(value).decode("ascii")
        else:
            data.pop(key, None)
    body.update(
        apiVersion="v1",
        kind="Secret",
        metadata=metadata,
        type=body.get("type") or SECRET_TYPE,
        data=data,
    )
    return body
