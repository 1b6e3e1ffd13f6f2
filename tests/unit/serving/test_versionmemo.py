"""Results kept by the versions of cached objects, and only by them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from serving.versionmemo import VersionMemo, versions


def stored(name: str, version: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": version}}


class Counting:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, objects: Sequence[dict[str, Any]]) -> list[str]:
        self.calls += 1
        return [obj["metadata"]["resourceVersion"] for obj in objects]


def test_the_same_versions_are_computed_once() -> None:
    compute = Counting()
    memo = VersionMemo(compute)
    assert memo([stored("a", "1"), stored("b", "7")]) == ["1", "7"]
    assert memo([stored("a", "1"), stored("b", "7")]) == ["1", "7"]
    assert compute.calls == 1


def test_a_new_version_of_any_object_is_computed_anew() -> None:
    compute = Counting()
    memo = VersionMemo(compute)
    memo([stored("a", "1"), stored("b", "7")])
    assert memo([stored("a", "2"), stored("b", "7")]) == ["2", "7"]
    assert memo([stored("a", "1")]) == ["1"]  # one object fewer: another set
    assert compute.calls == 3


def test_objects_without_uid_or_version_are_never_kept() -> None:
    compute = Counting()
    memo = VersionMemo(compute)
    unversioned = [{"metadata": {"name": "a", "uid": "u", "resourceVersion": ""}}]
    memo(unversioned)
    memo(unversioned)
    assert compute.calls == 2
    assert versions([{"metadata": {"uid": "u"}}]) is None
    assert versions([{"metadata": None}]) is None
    assert versions([]) == ()


def test_the_memo_starts_afresh_when_full() -> None:
    compute = Counting()
    memo = VersionMemo(compute, max_entries=2)
    for version in ("1", "2", "3"):
        memo([stored("a", version)])
    memo([stored("a", "1")])  # forgotten when the third came in
    assert compute.calls == 4
