"""The objects integration tests apply (ImageStreams, LimitRanges, ResourceQuotas) and
what they read back from them: one spelling of each for every test module."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tests.integration.support.cluster import ClusterEnv

GROUP = "image.alauda.io"


def stream(name: str, tags: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "ImageStream",
        "metadata": {"name": name, **extra},
        "spec": {"tags": [{"name": t} for t in tags or []]},
    }


def stream_limits(name: str = "stream-limits", **maxima: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": name},
        "spec": {"limits": [{"type": "alauda.io/ImageStream", "max": maxima}]},
    }


def image_limit(storage: str, name: str = "image-limits") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": name},
        "spec": {"limits": [{"type": "alauda.io/Image", "max": {"storage": storage}}]},
    }


def quota(hard: dict[str, str], name: str = "images") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": name},
        "spec": {"hard": hard},
    }


def digest(n: int) -> str:
    return "sha256:" + f"{n:064x}"


def set_history(
    cluster: ClusterEnv,
    namespace: str,
    name: str,
    tags: dict[str, list[int]],
    *,
    check: bool = True,
    dry_run: bool = False,
) -> subprocess.CompletedProcess[str]:
    status = {
        "status": {
            "tags": [
                {
                    "tag": tag,
                    "items": [
                        {"image": digest(n), "created": "2026-01-01T00:00:00Z"} for n in items
                    ],
                }
                for tag, items in tags.items()
            ]
        }
    }
    return cluster.kubectl(
        "patch",
        "imagestream",
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
        *(["--dry-run=server"] if dry_run else []),
        check=check,
    )


def used(cluster: ClusterEnv, namespace: str, name: str = "images") -> str | None:
    obj = cluster.kubectl_json("get", "resourcequota", name, "-n", namespace)
    value: str | None = (obj.get("status") or {}).get("used", {}).get("alauda.io/imagestreams")
    return value


def imagestream(cluster: ClusterEnv, namespace: str, name: str) -> dict[str, Any]:
    result: dict[str, Any] = cluster.kubectl_json("get", "imagestream", name, "-n", namespace)
    return result


def history(cluster: ClusterEnv, namespace: str, name: str) -> dict[str, list[str]]:
    """A stream's recorded tags: each tag's image digests as recorded."""
    tags = (imagestream(cluster, namespace, name).get("status") or {}).get("tags") or []
    return {t["tag"]: [item["image"] for item in t.get("items") or []] for t in tags}
