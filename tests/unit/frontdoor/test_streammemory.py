"""The streams our tag writes returned: used while the watch cache has nothing newer."""

from __future__ import annotations

from typing import Any

from frontdoor.streammemory import StreamMemory, resource_version


def stream(name: str, version: str, **extra: Any) -> dict[str, Any]:
    return {"metadata": {"namespace": "team-a", "name": name, "resourceVersion": version, **extra}}


def test_a_stream_is_recalled_while_the_cache_holds_it_no_newer() -> None:
    versions = {"app": "5"}
    memory = StreamMemory(lambda namespace, name: versions.get(name))
    memory.remember(stream("app", "5"))
    assert memory.recall("team-a", "app") == stream("app", "5")
    versions["app"] = "4"  # the cache lags our write
    assert memory.recall("team-a", "app") == stream("app", "5")


def test_a_newer_cached_stream_is_someone_elses_write_and_forgets_ours() -> None:
    versions = {"app": "10"}  # as integers: "10" is newer than "9"
    memory = StreamMemory(lambda namespace, name: versions.get(name))
    memory.remember(stream("app", "9"))
    assert memory.recall("team-a", "app") is None
    versions["app"] = "9"
    assert memory.recall("team-a", "app") is None  # forgotten, not just skipped
    assert len(memory) == 0


def test_a_stream_the_cache_does_not_hold_is_not_recalled() -> None:
    """Deleted, or made again and not cached yet: read live."""
    memory = StreamMemory(lambda namespace, name: None)
    memory.remember(stream("app", "5"))
    assert memory.recall("team-a", "app") is None


def test_the_least_recently_written_stream_goes_first() -> None:
    memory = StreamMemory(lambda namespace, name: "1", size=2)
    for name in ("a", "b", "a", "c"):
        memory.remember(stream(name, "1"))
    assert len(memory) == 2
    assert memory.recall("team-a", "b") is None
    assert memory.recall("team-a", "a") is not None


def test_managed_fields_are_not_kept() -> None:
    """A replace without them keeps the stored ones; kept, they would cost memory and bytes
    on every write."""
    memory = StreamMemory(lambda namespace, name: "1")
    memory.remember(stream("app", "1", managedFields=[{"manager": "x"}]))
    assert memory.recall("team-a", "app") == stream("app", "1")


def test_namespaces_are_kept_apart() -> None:
    memory = StreamMemory(lambda namespace, name: "1")
    memory.remember(stream("app", "1"))
    assert memory.recall("team-b", "app") is None


def test_a_resource_version_is_read_or_none() -> None:
    assert resource_version(stream("app", "3")) == "3"
    assert resource_version({"metadata": {}}) is None
    assert resource_version(None) is None
