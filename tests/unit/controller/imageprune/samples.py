"""Streams and Images as the front door records them, for the pruner's unit tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from quota.timestamps import format_rfc3339

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=2)
"""Older than the default --keep-younger-than (60m)."""


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def blob(n: int) -> str:
    return f"sha256:{0xB000 + n:064x}"


def image(
    n: int,
    *,
    layers: dict[int, int] | None = None,
    created: datetime = OLD,
    children: tuple[int, ...] = (),
    repository: str = "team-a/app",
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Image ``n``: its layers ``{blob number: size}``, or an index of ``children``."""
    meta: dict[str, Any] = {
        "name": digest(n).replace(":", "-"),
        "creationTimestamp": format_rfc3339(created),
    }
    if annotations:
        meta["annotations"] = annotations
    body: dict[str, Any] = {
        "metadata": meta,
        "dockerImageReference": f"registry.example:5000/{repository}@{digest(n)}",
    }
    if children:
        body["dockerImageManifests"] = [{"digest": digest(c)} for c in children]
    else:
        body["dockerImageLayers"] = [
            {"name": blob(b), "size": size} for b, size in (layers or {}).items()
        ]
    return body


def event(n: int, created: datetime = OLD) -> dict[str, Any]:
    return {"image": digest(n), "created": format_rfc3339(created)}


def stream(
    name: str, tags: dict[str, list[dict[str, Any]]], namespace: str = "team-a"
) -> dict[str, Any]:
    """A stream whose status tags hold ``tags``' history, newest first."""
    return {
        "metadata": {"namespace": namespace, "name": name, "resourceVersion": "7"},
        "status": {"tags": [{"tag": tag, "items": items} for tag, items in tags.items()]},
    }


def by_digest(*images: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {"sha256:" + img["metadata"]["name"].split("-", 1)[1]: img for img in images}
