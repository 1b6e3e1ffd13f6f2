"""The front door's tests share one local stack with a front door before a real CNCF
registry, started for the first test of this package and stopped after its last (a stack
takes 15-25 s to start on 2 cores). Each test works in its own namespace, so none sees
another's streams, quota or accounts; what they do share, the front door's metrics and
its per-address bucket of unknown tokens, is read as deltas or drained only by
``test_tokens.py``, whose minted tokens are never throttled. A module whose front door
must be configured otherwise (fewer threads to pin) overrides ``stack`` with a
module-scoped one of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcluster.crane import Crane
from localcluster.frontdoor import LocalFrontDoor
from tests.integration.support.cluster import ClusterEnv
from tests.integration.support.registry import frontdoor_stack


@pytest.fixture(scope="package")
def stack() -> Iterator[ClusterEnv]:
    with frontdoor_stack() as env:
        yield env


@pytest.fixture
def door(stack: ClusterEnv) -> LocalFrontDoor:
    assert stack.stack is not None and stack.stack.frontdoor is not None
    return stack.stack.frontdoor


@pytest.fixture
def ns(stack: ClusterEnv) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (without waiting for finalizers)."""
    name = f"f-{uuid.uuid4().hex[:10]}"
    stack.kubectl("create", "namespace", name)
    yield name
    stack.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def crane(door: LocalFrontDoor, tmp_path: Path) -> Crane:
    return Crane(door.ca_file, tmp_path / "home")
