"""The API server's audit log read against the manifests' RBAC: which (group, resource,
verb) an account was granted, and which it used or was refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kube.issuerkeys import DISCOVERY_PATH, JWKS_PATH
from localcluster.stack import SERVICE_NAMESPACE

DECISION = "authorization.k8s.io/decision"
"""The audit annotation holding RBAC's verdict on a request (``allow`` or ``forbid``)."""
ISSUER_DISCOVERY_URLS = (DISCOVERY_PATH, JWKS_PATH)
"""The non-resource URLs the manifests grant."""


@dataclass(frozen=True, order=True)
class Access:
    group: str
    resource: str  # with "/subresource" when there is one
    verb: str

    def __str__(self) -> str:
        return f"{self.verb} {self.resource}" + (f".{self.group}" if self.group else "")


def granted(manifest: Path, account: str) -> set[Access]:
    """Every (group, resource, verb) the manifest's roles grant to ``account``."""
    documents = [d for d in yaml.safe_load_all(manifest.read_text()) if d]
    roles = {
        (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d
        for d in documents
        if d["kind"] in ("ClusterRole", "Role")
    }
    accesses: set[Access] = set()
    for binding in documents:
        if binding["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        subjects = binding.get("subjects") or []
        if not any(
            s["kind"] == "ServiceAccount"
            and s["name"] == account
            and s["namespace"] == SERVICE_NAMESPACE
            for s in subjects
        ):
            continue
        ref = binding["roleRef"]
        namespace = binding["metadata"].get("namespace", "") if ref["kind"] == "Role" else ""
        for rule in roles[(ref["kind"], namespace, ref["name"])]["rules"]:
            # A non-resource URL (the issuer's keys) is its own "resource" without a group.
            for group in rule.get("apiGroups", [""]):
                for resource in rule.get("resources", []) + rule.get("nonResourceURLs", []):
                    for verb in rule["verbs"]:
                        accesses.add(Access(group, resource, verb))
    return accesses


def audit_events(log: Path, account: str) -> Iterator[dict[str, Any]]:
    """The account's requests: of resources (``objectRef``), and of the non-resource URLs
    RBAC grants (the issuer's keys; not the health and version probes anyone may read)."""
    username = f"system:serviceaccount:{SERVICE_NAMESPACE}:{account}"
    for line in log.read_text().splitlines():
        event = json.loads(line)
        if event["user"]["username"] == username and (
            "objectRef" in event or event["requestURI"] in ISSUER_DISCOVERY_URLS
        ):
            yield event


def access_of(event: dict[str, Any]) -> Access:
    if "objectRef" not in event:
        return Access("", event["requestURI"], event["verb"])
    ref = event["objectRef"]
    resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
    return Access(ref.get("apiGroup", ""), resource, event["verb"])
