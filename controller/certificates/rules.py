"""When the webhook's CA and serving certificate are renewed, what the caBundle holds, and
when a new CA may sign the certificate that is served: the certificate manager's rules.

Pure: facts about the certificates and the time in, a plan out. A CA rotation keeps the
API server trusting the webhook by doing three things in order, each after the previous
one has had ``propagation`` to reach every reader (``--certificate-propagation-seconds``):

1. a new CA joins the bundle beside the old one, and the bundle is published in both
   webhook configurations (the API servers watch them);
2. the new CA signs the serving certificate (the serving pods load it from their Secret
   volume, which the kubelet updates);
3. the old CA leaves the bundle, once no pod can still be serving a certificate it signed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

CA_VALIDITY = dt.timedelta(days=365)
"""A year: rotations stay rare, yet the rotation path runs in every installation's life
(a ten-year CA would meet it first when nobody remembers how it works)."""
SERVING_VALIDITY = dt.timedelta(days=90)
"""As cert-manager's default Certificate duration: a leaked serving key is good for weeks."""
RENEW_AT = 2 / 3
"""A certificate is renewed once two thirds of its life have passed (cert-manager renews a
third of the duration before expiry), leaving a third for retries and rotation overlap."""
MAX_BUNDLE = 3
"""The CA that signed what pods may still serve, the one that signs now, and the next one."""


@dataclass(frozen=True)
class Certificate:
    """What the rules need of one certificate."""

    fingerprint: str
    not_before: dt.datetime
    not_after: dt.datetime

    @property
    def renew_at(self) -> dt.datetime:
        return self.not_before + (self.not_after - self.not_before) * RENEW_AT

    def expired(self, now: dt.datetime) -> bool:
        return now >= self.not_after


@dataclass(frozen=True)
class Serving:
    """The serving certificate in the Secret."""

    certificate: Certificate
    issuer: str | None
    """Fingerprint of the bundle CA that signed it; None when none of them did."""
    hosts: frozenset[str]
    issued_at: dt.datetime | None
    """When it was put in the Secret; None when that was not recorded."""


@dataclass(frozen=True)
class State:
    """The Secret as the rules see it, and whether its bundle is published."""

    bundle: tuple[Certificate, ...]
    """The CAs the API server is to trust (``ca.crt``), in order."""
    signing: str | None
    """Fingerprint of the bundle CA whose private key the Secret holds; None: no such CA."""
    serving: Serving | None
    bundle_live_since: dt.datetime | None
    """Since when both webhook configurations carry exactly this bundle; None: they do not."""
    rotation_requested: bool = False
    """Someone asked for a new CA now (``image-registry-webhook certs rotate``)."""


@dataclass(frozen=True)
class Plan:
    """What to change; the reconciler carries it out, then publishes the bundle."""

    keep: tuple[str, ...]
    """Fingerprints of the bundle CAs that stay, in order."""
    new_ca: bool
    """A new CA joins the bundle after them and signs from now on."""
    issue_serving: bool
    """The signing CA (the new one, if any) signs a new serving certificate."""
    reasons: tuple[str, ...]
    recheck_at: dt.datetime | None
    """When these rules may want a change though nothing else does (a renewal, the end of
    a propagation wait, an expiry); only meaningful for a plan that changes nothing."""

    def changes(self, state: State) -> bool:
        return (
            self.new_ca
            or self.issue_serving
            or self.keep != tuple(ca.fingerprint for ca in state.bundle)
        )


def serving_trusted(state: State, now: dt.datetime) -> bool:
    """Whether the API server would trust the Secret's serving certificate now: itself
    unexpired, signed by an unexpired CA of the bundle."""
    serving = state.serving
    if serving is None or serving.certificate.expired(now):
        return False
    return serving.issuer in {ca.fingerprint for ca in state.bundle if not ca.expired(now)}


def decide(state: State, now: dt.datetime, hosts: Iterable[str], propagation: dt.timedelta) -> Plan:
    """The next step towards: a fresh CA whose key we hold, a fresh serving certificate it
    signed, and a bundle of just that CA, without a moment where the API server distrusts
    what a serving pod may present."""
    reasons: list[str] = []
    deadlines: list[dt.datetime] = []
    valid = [ca for ca in state.bundle if not ca.expired(now)]
    if len(valid) < len(state.bundle):
        reasons.append("an expired CA leaves the bundle")
    signing = next((ca for ca in valid if ca.fingerprint == state.signing), None)
    serving = state.serving
    trusted = serving_trusted(state, now)

    new_ca = True
    if signing is None:
        reasons.append("no CA whose key we hold")
    elif now >= signing.renew_at:
        reasons.append("the CA is due for renewal")
    elif state.rotation_requested:
        reasons.append("a rotation was requested")
    else:
        new_ca = False
        deadlines.append(signing.renew_at)
    keep = [ca.fingerprint for ca in valid]
    replaced = signing if new_ca else None
    if replaced is not None and (serving is None or serving.issuer != replaced.fingerprint):
        # It never signed what is served (a rotation asked for again before the last one
        # switched), so nobody needs to trust it.
        keep.remove(replaced.fingerprint)
    elif replaced is not None and len(keep) >= MAX_BUNDLE:
        # The previous rotation is still waiting to drop its old CA: this one waits for it.
        new_ca = False
        reasons.pop()

    issue = False
    if serving is None or not trusted:
        # Nothing that works is served, so there is nothing to keep working: at once.
        issue = True
        reasons.append("no serving certificate the API server would trust")
    elif new_ca:
        pass  # the new CA signs once the bundle that holds it is live (a later step)
    elif signing is not None and serving.issuer != signing.fingerprint:
        # Signed by an older CA: switch once the API servers have had time to trust ours.
        live = state.bundle_live_since
        if live is not None and now >= live + propagation:
            issue = True
            reasons.append("the new CA has been trusted long enough to sign")
        elif live is not None:
            deadlines.append(live + propagation)
    elif now >= serving.certificate.renew_at:
        issue = True
        reasons.append("the serving certificate is due for renewal")
    elif not set(hosts) <= serving.hosts:
        issue = True
        reasons.append("the serving certificate does not name every host")
    else:
        deadlines.append(serving.certificate.renew_at)

    if not new_ca and not issue and signing is not None and len(keep) > 1:
        # Older CAs go once the pods have had time to load what the signing CA signed.
        issued_at = serving.issued_at if serving is not None else None
        if serving is not None and serving.issuer == signing.fingerprint and issued_at:
            if now >= issued_at + propagation:
                keep = [signing.fingerprint]
                reasons.append("the old CA signs nothing that is served any more")
            else:
                deadlines.append(issued_at + propagation)

    deadlines.extend(ca.not_after for ca in valid)
    if serving is not None:
        deadlines.append(serving.certificate.not_after)
    return Plan(
        keep=tuple(keep),
        new_ca=new_ca,
        issue_serving=issue,
        reasons=tuple(reasons),
        recheck_at=min((d for d in deadlines if d > now), default=None),
    )
