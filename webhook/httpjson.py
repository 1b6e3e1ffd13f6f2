"""Request bodies that must be one JSON object of a given apiVersion and kind."""

from __future__ import annotations

import json
from typing import Any


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def typed_json_object(
    body: bytes,
    content_type: str | None,
    *,
    api_version: str,
    kind: str,
    error: type[ValueError],
) -> dict[str, Any]:
    """The body as a dict, or ``error`` naming the first problem (never a traceback)."""
    if media_type(content_type) != "application/json":
        raise error(
            f"unsupported content type {content_type or '(none)'!r}: expected application/json"
        )
    if not body:
        raise error(f"request body is empty: expected a {kind} in JSON")
    try:
        obj = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise error(f"request body is not valid JSON: {err}") from None
    except RecursionError:
        raise error("request body JSON is nested too deeply") from None
    if not isinstance(obj, dict):
        raise error(f"request body must be a JSON object: a {kind}")
    if obj.get("kind") != kind:
        raise error(f"kind must be {kind!r}, got {obj.get('kind')!r}")
    if obj.get("apiVersion") != api_version:
        raise error(f"apiVersion must be {api_version!r}, got {obj.get('apiVersion')!r}")
    return obj
