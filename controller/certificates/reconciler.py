"""Keep the webhook's CA and serving certificate, and the caBundle that trusts them.

Level-based like the other reconcilers: each call reads the Secret and both webhook
configurations, asks ``rules.decide`` for the next step, carries it out, publishes the
bundle, then writes the Secret with a resourceVersion precondition. The bundle is
published before the Secret is written, so no pod can load a certificate whose CA the
webhook configurations do not carry yet; a conflict or a crash in between only repeats
work on the next call.

Only the caBundle fields are written, by server-side apply under our own field manager:
nothing else in the configurations changes hands, so an installer (kubectl, Argo CD,
Helm) that owns the rest never fights us over it.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from kubernetes.client.exceptions import ApiException

from controller.certificates import material as m
from controller.certificates import rules
from kube import apierrors, certs
from kube.requeue import Requeue
from quota.objects import Obj

log = logging.getLogger(__name__)

FIELD_MANAGER = "registry-v2-cert-manager"
"""Our name in the configurations' managedFields: the owner of the caBundle fields."""
CONFIGURATION_KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
RECHECK_SECONDS = 60.0
"""How often the manager looks again when nothing is due: a caBundle another writer changed
(a re-install, an old version) is put back within this."""
MIN_REQUEUE_SECONDS = 1.0
"""After a change, the next step is decided this soon (never a hot loop)."""


class CertificateCalls(Protocol):
    """The API calls the manager makes (``api.CertificateApi`` makes them, rate limited)."""

    def read_secret(self, namespace: str, name: str) -> Obj | None: ...
    def create_secret(self, namespace: str, body: Obj) -> Obj: ...
    def replace_secret(self, namespace: str, name: str, body: Obj) -> Obj: ...
    def read_configuration(self, kind: str, name: str) -> Obj | None: ...
    def apply_ca_bundle(self, kind: str, name: str, webhooks: list[str], bundle: bytes) -> None: ...


DEFAULT_CERTIFICATE_PROPAGATION_SECONDS = 180.0
"""How long a certificate change takes to reach every reader: the kubelet updates a Secret
volume within its sync period (1 min) plus its watch's delay, and the API servers see a
webhook configuration through their watch within seconds; three minutes leaves room for a
busy node. The certificate manager waits this long between the steps of a CA rotation."""


@dataclass(frozen=True)
class CertificateConfig:
    namespace: str
    configuration_name: str
    hosts: tuple[str, ...]
    """The names the serving certificate must carry (``kube.certs.serving_hosts``)."""
    propagation: dt.timedelta


def _webhooks(configuration: Obj) -> list[Obj]:
    return [w for w in configuration.get("webhooks") or [] if isinstance(w, dict)]


def carries(configuration: Obj | None, bundle: bytes) -> bool:
    """Whether every webhook of ``configuration`` trusts exactly ``bundle``."""
    if configuration is None or not _webhooks(configuration):
        return False
    wanted = base64.b64encode(bundle).decode("ascii")
    return all(
        (w.get("clientConfig") or {}).get("caBundle") == wanted for w in _webhooks(configuration)
    )


class CertificateReconciler:
    def __init__(
        self,
        api: CertificateCalls,
        config: CertificateConfig,
        *,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._api = api
        self._config = config
        self._now = now

    def reconcile(self, key: str) -> float | None:
        """Converge the Secret ``key`` (``namespace/name``) and the caBundles; return the
        seconds until the next step is due."""
        namespace, _, name = key.partition("/")
        now = self._now()
        hosts = list(self._config.hosts)
        secret = self._api.read_secret(namespace, name)
        before = m.read_material(secret)
        annotations = m.annotations_of(secret)
        configurations = {
            kind: self._api.read_configuration(kind, self._config.configuration_name)
            for kind in CONFIGURATION_KINDS
        }
        live = all(carries(c, before.bundle_pem) for c in configurations.values())
        state = m.state_of(before, annotations, bundle_live=live)
        plan = rules.decide(state, now, hosts, self._config.propagation)
        after = before
        if plan.changes(state):
            log.info("certificates: %s", "; ".join(plan.reasons) or "tidying the bundle")
            after = m.carry_out(before, plan, hosts=hosts, now=now)
            if plan.new_ca:
                log.info("certificates: new CA %s", _fingerprint(after.bundle[-1]))
            if plan.issue_serving and after.serving is not None:
                log.info(
                    "certificates: new serving certificate %s", _fingerprint(after.serving.cert_pem)
                )

        republished, live = self._publish(configurations, after.bundle_pem)
        request = m.rotation_request(annotations)
        stamped = m.stamp(
            annotations,
            before=before,
            after=after,
            bundle_live=live,
            republished=republished,
            answered=request if plan.new_ca else None,
            now=now,
        )
        body = m.secret_body(namespace, after, stamped, secret)
        if secret is None or body != secret:
            self._write(namespace, name, body, created=secret is None)
        settled = m.state_of(after, stamped, bundle_live=live)
        following = rules.decide(settled, now, hosts, self._config.propagation)
        if following.changes(settled):
            return MIN_REQUEUE_SECONDS
        if following.recheck_at is None:
            return RECHECK_SECONDS
        wait = (following.recheck_at - now).total_seconds()
        return max(MIN_REQUEUE_SECONDS, min(wait, RECHECK_SECONDS))

    def _publish(self, configurations: dict[str, Obj | None], bundle: bytes) -> tuple[bool, bool]:
        """Write ``bundle`` where a configuration lacks it: (whether anything was written,
        whether both now carry it). A configuration that does not exist is not ours to
        create (the manifests install it): it is waited for."""
        wrote = False
        for kind, configuration in configurations.items():
            if configuration is None:
                log.warning(
                    "certificates: %s %s does not exist; its caBundle waits for it",
                    kind,
                    self._config.configuration_name,
                )
                continue
            if carries(configuration, bundle):
                continue
            names = [str(w["name"]) for w in _webhooks(configuration) if w.get("name")]
            self._api.apply_ca_bundle(kind, self._config.configuration_name, names, bundle)
            log.info(
                "certificates: published a caBundle of %d CA(s) in %s %s",
                bundle.count(b"-----BEGIN CERTIFICATE-----"),
                kind,
                self._config.configuration_name,
            )
            wrote = True
        live = all(c is not None and _webhooks(c) for c in configurations.values())
        return wrote, live

    def _write(self, namespace: str, name: str, body: Obj, *, created: bool) -> None:
        try:
            if created:
                self._api.create_secret(namespace, body)
                log.info("certificates: created Secret %s/%s", namespace, name)
            else:
                self._api.replace_secret(namespace, name, body)
        except ApiException as err:
            # Created meanwhile, replaced meanwhile (stale resourceVersion) or deleted
            # meanwhile: someone else wrote the Secret; decide again from what is there now.
            if (
                apierrors.is_already_exists(err)
                or apierrors.is_conflict(err)
                or apierrors.is_not_found(err)
            ):
                raise Requeue(
                    f"Secret {namespace}/{name} changed: {apierrors.reason(err)}"
                ) from err
            raise


def _fingerprint(pem: bytes) -> str:
    return certs.describe(pem).fingerprint[:16]
