"""The objects and bodies every benchmark sends or caches, one shape of each: an
ImageStream and an Image as the API server stores them, a ServiceAccount at admission,
the namespace's LimitRange and ResourceQuota, an AdmissionReview as kube-apiserver sends
it and a PushReview as the registry does. Each benchmark picks only the sizes (tags,
history, layers) its issue names, so figures of different benchmarks describe the same
objects."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any, Final

from quota.objects import Obj

REGISTRY: Final = "image-registry.image-registry-system.svc:5000"
"""The internal registry's Service, as image references name it."""
CREATED: Final = "2026-11-28T09:00:00Z"
MANIFEST_TYPE: Final = "application/vnd.oci.image.manifest.v1+json"
LAYER_TYPE: Final = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG_BYTES: Final = 1469
"""An image config of a typical application image (its Env, Cmd, Labels and history)."""
LAYER_BYTES: Final = 2_811_478
"""A compressed layer of a typical application image on a distribution base."""
SERVER_FIELDS: Final = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
)
"""What the API server sets on an object: a client's create sends none of them."""


def digest(*parts: object) -> str:
    """A sha256 digest named by ``parts``: the same parts, the same digest."""
    return "sha256:" + hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


def _fields(*names: str) -> dict[str, Any]:
    """A managedFields ``fieldsV1`` set naming ``names`` (the shape the API server writes)."""
    return {f"f:{name}": {} for name in names}


def _managed(manager: str, api_version: str, fields: dict[str, Any], **extra: str) -> Obj:
    return {
        "manager": manager,
        "operation": "Update",
        "apiVersion": api_version,
        "time": CREATED,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
        **extra,
    }


def _uid(*parts: object) -> str:
    return f"00000000-0000-4000-8000-{digest('uid', *parts)[-12:]}"


def imagestream(
    namespace: str,
    name: str,
    *,
    tags: int,
    history: int,
    status: bool = True,
    first_image: int = 0,
) -> Obj:
    """An ImageStream of ``tags`` tags, each with ``history`` images in its status (images
    numbered from ``first_image``, tag by tag), as ``kubectl apply`` and the registry leave
    it in the API server."""
    tag_names = [f"v{t}" for t in range(tags)]
    spec_fields = {
        "f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied": {}}},
        "f:spec": {
            "f:tags": {
                f'k:{{"name":"{tag}"}}': {".": {}, **_fields("from", "name", "referencePolicy")}
                for tag in tag_names
            }
        },
    }
    stream: Obj = {
        "apiVersion": "image.alauda.io/v1",
        "kind": "ImageStream",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app": name},
            "uid": _uid(namespace, name),
            "resourceVersion": "48213",
            "generation": 2,
            "creationTimestamp": CREATED,
            "annotations": {"kubectl.kubernetes.io/last-applied": '{"apiVersion":"..."}'},
            "managedFields": [
                _managed("kubectl-client-side-apply", "image.alauda.io/v1", spec_fields)
            ],
        },
        "spec": {
            "lookupPolicy": {"local": False},
            "tags": [
                {
                    "name": tag,
                    "annotations": None,
                    "from": {"kind": "DockerImage", "name": f"registry.example.com/{name}:{tag}"},
                    "generation": 2,
                    "importPolicy": {"importMode": "Legacy"},
                    "referencePolicy": {"type": "Source"},
                }
                for tag in tag_names
            ],
        },
    }
    if status:
        stream["status"] = {
            "dockerImageRepository": f"{REGISTRY}/{namespace}/{name}",
            "tags": [
                {
                    "tag": tag,
                    "items": [
                        history_item(namespace, name, first_image + t * history + h)
                        for h in range(history)
                    ],
                }
                for t, tag in enumerate(tag_names)
            ],
        }
        status_fields = {
            "f:status": {
                "f:dockerImageRepository": {},
                "f:tags": {f'k:{{"tag":"{tag}"}}': _fields("items", "tag") for tag in tag_names},
            }
        }
        stream["metadata"]["managedFields"].append(
            _managed("registry", "image.alauda.io/v1", status_fields, subresource="status")
        )
    return stream


def history_item(namespace: str, repository: str, image: int) -> Obj:
    """A tag's history entry for ``image(namespace, image, repository)``."""
    return {
        "created": CREATED,
        "dockerImageReference": f"{REGISTRY}/{namespace}/{repository}@{digest(image)}",
        "image": digest(image),
        "generation": 2,
    }


def created(obj: Obj) -> Obj:
    """What a client sends to create ``obj``: no field the API server sets, no status."""
    body = copy.deepcopy(obj)
    for key in SERVER_FIELDS:
        body["metadata"].pop(key, None)
    body.pop("status", None)
    return body


def image(
    namespace: str,
    n: int,
    *,
    layers: int,
    layer_bytes: int = LAYER_BYTES,
    repository: str = "app",
) -> Obj:
    """Image ``n`` as the registry records it: its layers (``layer_bytes`` and up, so its
    size is theirs plus the config's) and its config's metadata (Env, Cmd, Labels, history)."""
    layer_list: list[dict[str, Any]] = [
        {"name": layer_digest(n, i), "size": layer_bytes + i, "mediaType": LAYER_TYPE}
        for i in range(layers)
    ]
    return {
        "apiVersion": "image.alauda.io/v1",
        "kind": "Image",
        "metadata": {"name": f"img-{n:06d}"},
        "dockerImageReference": f"{REGISTRY}/{namespace}/{repository}@{digest(n)}",
        "dockerImageManifestMediaType": MANIFEST_TYPE,
        "dockerImageConfig": {"digest": digest("config", n), "size": CONFIG_BYTES},
        "dockerImageLayers": layer_list,
        "dockerImageMetadata": {
            "size": sum(layer["size"] for layer in layer_list) + CONFIG_BYTES,
            "architecture": "amd64",
            "os": "linux",
            "created": CREATED,
            "config": {
                "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", f"APP_VERSION=1.{n}"],
                "Cmd": ["/app/server", "--port=8080"],
                "Labels": {f"org.opencontainers.image.{k}": f"value-{k}-{n}" for k in "abcde"},
                "WorkingDir": "/app",
            },
            "history": [
                {"created": CREATED, "created_by": f"RUN step {i} of build {n}"}
                for i in range(layers)
            ],
        },
    }


def layer_digest(image: int, layer: int) -> str:
    return digest("layer", image, layer)


def serviceaccount(namespace: str, name: str) -> Obj:
    """A ServiceAccount at CREATE admission: no uid yet, managedFields already set."""
    return {
        "kind": "ServiceAccount",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": "builder", "app.kubernetes.io/part-of": "ci"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}\n"},
            "managedFields": [
                _managed(
                    "kubectl-client-side-apply",
                    "v1",
                    {
                        "f:metadata": {
                            "f:annotations": {
                                ".": {},
                                "f:kubectl.kubernetes.io/last-applied-configuration": {},
                            },
                            "f:labels": {
                                ".": {},
                                "f:app.kubernetes.io/name": {},
                                "f:app.kubernetes.io/part-of": {},
                            },
                        }
                    },
                )
            ],
        },
    }


def limit_range(name: str = "registry-limits") -> Obj:
    """A namespace's LimitRange: containers' limits, and the registry's for images and
    streams (far above the samples, so every review is allowed)."""
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": name},
        "spec": {
            "limits": [
                {"type": "Container", "max": {"cpu": "2", "memory": "1Gi"}},
                {"type": "alauda.io/Image", "max": {"storage": "1Gi"}},
                {
                    "type": "alauda.io/ImageStream",
                    "max": {"alauda.io/image-tags": "50", "alauda.io/images": "500"},
                },
            ]
        },
    }


def resource_quota(name: str = "registry-quota", hard: dict[str, str] | None = None) -> Obj:
    """A namespace's ResourceQuota, by default of 100 ImageStreams."""
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": name},
        "spec": {"hard": hard if hard is not None else {"alauda.io/imagestreams": "100"}},
    }


def admission_review(
    group: str,
    kind: str,
    resource: str,
    operation: str,
    obj: Obj,
    old: Obj | None = None,
    sub_resource: str = "",
) -> bytes:
    """An AdmissionReview as kube-apiserver sends it: compact JSON, user with groups and
    extra, the request's kind and resource twice, and the operation's options."""
    version = "v1"
    gvk = {"group": group, "version": version, "kind": kind}
    gvr = {"group": group, "version": version, "resource": resource}
    options_kind = "CreateOptions" if operation == "CREATE" else "UpdateOptions"
    request: Obj = {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": gvk,
        "resource": gvr,
        "requestKind": gvk,
        "requestResource": gvr,
        "name": obj["metadata"]["name"],
        "namespace": obj["metadata"]["namespace"],
        "operation": operation,
        "userInfo": {
            "username": "kubernetes-admin",
            "uid": "aws-iam-authenticator:1234:ABCD",
            "groups": ["system:masters", "system:authenticated"],
            "extra": {"authentication.kubernetes.io/credential-id": ["X509SHA256=9f86d08"]},
        },
        "object": obj,
        "oldObject": old,
        "dryRun": False,
        "options": {
            "kind": options_kind,
            "apiVersion": "meta.k8s.io/v1",
            "fieldManager": "kubectl-client-side-apply",
            "fieldValidation": "Strict",
        },
    }
    if sub_resource:
        request["subResource"] = sub_resource
    review = {"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": request}
    return json.dumps(review, separators=(",", ":")).encode()


def push_review(namespace: str, tag: str, image: int, *, layers: int) -> bytes:
    """A PushReview of ``image(namespace, image, layers=layers)`` to the repository
    ``app``, as the registry sends it."""
    review = {
        "apiVersion": "image.alauda.io/v1",
        "kind": "PushReview",
        "spec": {
            "namespace": namespace,
            "repository": "app",
            "tag": tag,
            "digest": digest(image),
            "mediaType": MANIFEST_TYPE,
            "config": {"digest": digest("config", image), "size": CONFIG_BYTES},
            "layers": [
                {"digest": layer_digest(image, i), "size": LAYER_BYTES + i} for i in range(layers)
            ],
        },
    }
    return json.dumps(review, separators=(",", ":")).encode()
