"""Kubernetes objects as decoded JSON: one alias and total accessors that never raise.

Objects reach the rules straight from JSON (admission reviews, watch caches), so a field
may be absent, null or of the wrong type; these read such dicts without crashing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Obj = dict[str, Any]
"""A Kubernetes object (or any JSON object) decoded from JSON."""


def mapping(value: object) -> Mapping[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """``metadata`` of an object, empty when absent or not an object."""
    return mapping(obj.get("metadata"))


def object_name(obj: Mapping[str, Any]) -> str:
    """``metadata.name``, or ``""`` when absent."""
    name = metadata(obj).get("name")
    return name if isinstance(name, str) else ""


def object_namespace(obj: Mapping[str, Any]) -> str:
    """``metadata.namespace``, or ``""`` for cluster-scoped objects."""
    namespace = metadata(obj).get("namespace")
    return namespace if isinstance(namespace, str) else ""


def object_key(obj: Mapping[str, Any]) -> str:
    """``namespace/name``, or ``name`` for cluster-scoped objects (client-go's cache key)."""
    namespace, name = object_namespace(obj), object_name(obj)
    return f"{namespace}/{name}" if namespace else name
