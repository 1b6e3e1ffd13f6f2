"""The service installed on the node cluster the way ``docs/install.md`` tells a user.

The standalone overlay and the front door component, applied as shipped; a kustomization
of the user's own adds only what a cluster brings itself: the image that was built, the
upstream registry, the front door's TLS Secret and CA, and the values of this cluster
(:data:`PER_CLUSTER`). Nothing in ``manifests/`` is copied or edited.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kube import certs
from localcluster import network
from localcluster.binaries import REPO_ROOT
from localcluster.frontdoor import route_config
from localcluster.registry import registry_config

NAMESPACE = "image-registry-system"
FRONTDOOR_IP = network.service_ip(50)
UPSTREAM_IP = network.service_ip(51)
"""The front door's and the upstream registry's ClusterIPs, fixed so that the node (which
has no cluster DNS) and the pods' ``hostAliases`` can name them before they exist."""
REGISTRY_PORT = 5000
ROUTE_HOST = f"{FRONTDOOR_IP}:{REGISTRY_PORT}"
"""The registry host users write in ``image:``: a route of ``configs/cluster``, so every
pull secret carries it. Clusters give the node a name that resolves (OpenShift's
node-resolver writes the Service's name into each node's ``/etc/hosts``); this node has no
cluster DNS, so the route is the Service's address."""
UPSTREAM_HOST = f"image-registry-upstream.{NAMESPACE}.svc"
FRONTDOOR_HOSTS = [
    f"image-registry.{NAMESPACE}.svc",
    f"image-registry.{NAMESPACE}.svc.cluster.local",
    FRONTDOOR_IP,
]
UPSTREAM_LABELS = {"app.kubernetes.io/name": "image-registry-upstream"}
PER_CLUSTER = """\
What this cluster brings itself, patched in as a user would:
- no cluster DNS: the pods that call the upstream registry resolve its Service name
  through hostAliases, and the front door's Service has a fixed address;
- the node's containerd reads registry host directories (node-ca writes them) from the
  node's data directory, not /etc/containerd/certs.d.
"""


@dataclass(frozen=True)
class Images:
    policy: str
    """The service's image reference (``name:tag``), loaded into the node."""
    registry: str
    """The upstream registry's image reference."""


def _split(reference: str) -> tuple[str, str]:
    name, _, tag = reference.rpartition(":")
    return name, tag


def _document_stream(documents: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False)


def upstream_registry(image: str) -> list[dict[str, Any]]:
    """The CNCF registry behind the front door: the user's own registry in a real install,
    so it lives here, not in ``manifests/``. Its configuration is a Secret (it holds the
    HTTP secret that signs upload state)."""
    config = registry_config(
        port=REGISTRY_PORT,
        storage_dir=Path("/var/lib/registry"),
        cert_file=Path("/tls/tls.crt"),
        key_file=Path("/tls/tls.key"),
        secret=secrets.token_hex(32),
    )
    config["http"]["addr"] = f":{REGISTRY_PORT}"
    meta = {"namespace": NAMESPACE, "labels": dict(UPSTREAM_LABELS)}
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "image-registry-upstream-config", **meta},
            "stringData": {"config.yml": json.dumps(config, indent=2)},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "image-registry-upstream", **meta},
            "spec": {
                "clusterIP": UPSTREAM_IP,
                "selector": dict(UPSTREAM_LABELS),
                "ports": [{"name": "https", "port": REGISTRY_PORT, "targetPort": REGISTRY_PORT}],
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "image-registry-upstream", **meta},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": dict(UPSTREAM_LABELS)},
                "template": {
                    "metadata": {"labels": dict(UPSTREAM_LABELS)},
                    "spec": {
                        "automountServiceAccountToken": False,
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 65532,
                            "runAsGroup": 65532,
                            "fsGroup": 65532,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [
                            {
                                "name": "registry",
                                "image": image,
                                "imagePullPolicy": "IfNotPresent",
                                "args": ["serve", "/etc/registry/config.yml"],
                                "env": [{"name": "OTEL_TRACES_EXPORTER", "value": "none"}],
                                "ports": [{"name": "https", "containerPort": REGISTRY_PORT}],
                                "readinessProbe": {
                                    "httpGet": {
                                        "path": "/",
                                        "port": "https",
                                        "scheme": "HTTPS",
                                    },
                                    "periodSeconds": 2,
                                },
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "volumeMounts": [
                                    {"name": "config", "mountPath": "/etc/registry"},
                                    {"name": "tls", "mountPath": "/tls"},
                                    {"name": "storage", "mountPath": "/var/lib/registry"},
                                ],
                            }
                        ],
                        "volumes": [
                            {
                                "name": "config",
                                "secret": {"secretName": "image-registry-upstream-config"},
                            },
                            {
                                "name": "tls",
                                "secret": {"secretName": "image-registry-upstream-tls"},
                            },
                            {"name": "storage", "emptyDir": {}},
                        ],
                    },
                },
            },
        },
    ]


def _tls_secret(name: str, ca: certs.KeyPair, common_name: str, hosts: list[str]) -> dict[str, Any]:
    pair = certs.issue(ca, common_name, hosts=hosts)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "stringData": {
            "tls.crt": pair.cert_pem.decode(),
            "tls.key": pair.key_pem.decode(),
            "ca.crt": ca.cert_pem.decode(),
        },
    }


def _hosts_patch(deployment: str) -> dict[str, Any]:
    return {
        "target": {"kind": "Deployment", "name": deployment},
        "patch": json.dumps(
            [
                {
                    "op": "add",
                    "path": "/spec/template/spec/hostAliases",
                    "value": [{"ip": UPSTREAM_IP, "hostnames": [UPSTREAM_HOST]}],
                }
            ]
        ),
    }


@dataclass(frozen=True)
class Install:
    directory: Path
    """The user's kustomization (``kubectl apply -k`` it)."""
    frontdoor_ca: bytes
    """The CA clients of the front door must trust."""


def write_kustomization(directory: Path, images: Images, *, hosts_dir: Path) -> Install:
    """The user's kustomization over the shipped overlay, in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = certs.new_ca("registry-v2-e2e-registry-ca")
    objects = [
        *upstream_registry(images.registry),
        _tls_secret("image-registry-frontdoor-tls", ca, FRONTDOOR_HOSTS[0], FRONTDOOR_HOSTS),
        # Its address too: `prune images` run on the node's host (no cluster DNS) names it so.
        _tls_secret("image-registry-upstream-tls", ca, UPSTREAM_HOST, [UPSTREAM_HOST, UPSTREAM_IP]),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "image-registry-upstream-ca", "namespace": NAMESPACE},
            "data": {"ca.crt": ca.cert_pem.decode()},
        },
    ]
    (directory / "cluster-objects.yaml").write_text(_document_stream(objects))
    (directory / "cluster-objects.yaml").chmod(0o600)
    policy_name, policy_tag = _split(images.policy)
    # kustomize takes other kustomizations by relative path only.
    manifests = Path(os.path.relpath(REPO_ROOT / "manifests", directory))
    patches = [
        {
            "target": {"kind": "Service", "name": "image-registry"},
            "patch": json.dumps([{"op": "add", "path": "/spec/clusterIP", "value": FRONTDOOR_IP}]),
        },
        _hosts_patch("image-registry-frontdoor"),
        _hosts_patch("image-registry-controller"),
        {
            "target": {"kind": "DaemonSet", "name": "image-registry-node-ca"},
            "patch": json.dumps(
                [
                    {
                        "op": "replace",
                        "path": "/spec/template/spec/volumes/1/hostPath/path",
                        "value": str(hosts_dir),
                    }
                ]
            ),
        },
    ]
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [str(manifests / "overlays" / "standalone"), "cluster-objects.yaml"],
        "components": [str(manifests / "components" / c) for c in ("frontdoor", "node-ca")],
        "images": [{"name": "registry-v2/policy", "newName": policy_name, "newTag": policy_tag}],
        "patches": patches,
    }
    (directory / "kustomization.yaml").write_text(
        "# " + PER_CLUSTER.replace("\n", "\n# ").rstrip("# ") + "\n" + yaml.safe_dump(kustomization)
    )
    return Install(directory, ca.cert_pem)


def route_document() -> str:
    """``configs/cluster`` with the route users pull by (applied once its CRD serves)."""
    return json.dumps(route_config(ROUTE_HOST))
