"""Total accessors over decoded Kubernetes objects."""

from __future__ import annotations

from typing import Any

import pytest

from quota.objects import mapping, metadata, object_key, object_name, object_namespace


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"metadata": {"name": "x"}}, "x"),
        ({"metadata": {"name": 5}}, ""),
        ({"metadata": None}, ""),
        ({}, ""),
    ],
)
def test_object_name(obj: dict[str, Any], expected: str) -> None:
    assert object_name(obj) == expected


@pytest.mark.parametrize("value", [None, 3, "text", ["a"], True])
def test_mapping_of_a_non_object_is_empty(value: object) -> None:
    assert mapping(value) == {}


def test_mapping_of_an_object_is_itself() -> None:
    value = {"a": 1}
    assert mapping(value) is value


def test_metadata_of_an_object_without_metadata_is_empty() -> None:
    assert metadata({"metadata": "oops"}) == {}
    assert metadata({"metadata": {"uid": "u"}}) == {"uid": "u"}


@pytest.mark.parametrize(
    ("obj", "key"),
    [
        ({"metadata": {"namespace": "team-a", "name": "app"}}, "team-a/app"),
        ({"metadata": {"name": "cluster"}}, "cluster"),
        ({"metadata": {"namespace": "", "name": "cluster"}}, "cluster"),
        ({"metadata": {"namespace": 7, "name": "x"}}, "x"),
        ({}, ""),
    ],
)
def test_object_key_is_namespace_slash_name_or_just_name(obj: dict[str, Any], key: str) -> None:
    assert object_key(obj) == key
    assert object_namespace(obj) == key.rpartition("/")[0]
