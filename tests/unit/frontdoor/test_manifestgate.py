"""The large-manifest gate: slots by bytes received, never all of them to one namespace,
and a bounded wait for one."""

from __future__ import annotations

import threading
import time

import pytest

from frontdoor.manifestgate import ManifestGate, namespace_slots
from serving.httpjson import LARGE_BODY_SLOTS, SMALL_BODY_BYTES, ServerBusy

LARGE = SMALL_BODY_BYTES + 1
DEADLINE = 10.0
WAIT_SECONDS = 0.2


def test_one_namespace_never_holds_every_slot() -> None:
    gate = ManifestGate(wait_seconds=0)
    with gate.admit("team-a", LARGE):
        with pytest.raises(ServerBusy, match="team-a"), gate.admit("team-a", LARGE):
            pass
        with gate.admit("team-b", LARGE):  # the other slot is team-b's to take
            pass


def test_the_default_slots_are_one_per_namespace() -> None:
    assert (LARGE_BODY_SLOTS, namespace_slots(LARGE_BODY_SLOTS)) == (2, 1)
    assert [namespace_slots(n) for n in (1, 3, 4, 8)] == [1, 1, 2, 4]


def test_all_slots_taken_refuses_every_namespace() -> None:
    gate = ManifestGate(slots=2, wait_seconds=0)
    with (
        gate.admit("team-a", LARGE),
        gate.admit("team-b", LARGE),
        pytest.raises(ServerBusy),
        gate.admit("team-c", LARGE),
    ):
        pass


def test_small_manifests_need_no_slot_by_the_bytes_received() -> None:
    gate = ManifestGate(slots=1, wait_seconds=0)
    with gate.admit("team-a", LARGE), gate.admit("team-a", SMALL_BODY_BYTES):
        pass


def test_a_slot_freed_goes_to_the_namespace_waiting_for_it() -> None:
    gate = ManifestGate(wait_seconds=DEADLINE)
    got: list[str] = []
    held = gate.admit("team-a", LARGE)
    held.__enter__()

    def second() -> None:
        with gate.admit("team-a", LARGE):
            got.append("team-a")

    waiter = threading.Thread(target=second)
    waiter.start()
    with gate.admit("team-b", LARGE):  # not behind team-a's waiter
        got.append("team-b")
    assert got == ["team-b"]
    held.__exit__(None, None, None)
    waiter.join(DEADLINE)
    assert got == ["team-b", "team-a"]


def test_the_wait_for_a_slot_is_bounded() -> None:
    gate = ManifestGate(slots=1, wait_seconds=WAIT_SECONDS)
    with gate.admit("team-a", LARGE):
        started = time.monotonic()
        with pytest.raises(ServerBusy, match=r"within 0\.2 s"), gate.admit("team-b", LARGE):
            pass
        assert WAIT_SECONDS <= time.monotonic() - started < DEADLINE


def test_a_namespace_holds_at_most_half_the_bytes_and_all_hold_no_more_than_the_bound() -> None:
    gate = ManifestGate(held_bytes=100, wait_seconds=0)
    with gate.holding("team-a") as team_a, gate.holding("team-b") as team_b:
        team_a(30)
        team_a(20)
        with pytest.raises(ServerBusy, match="team-a"):
            team_a(1)
        team_b(50)
        with gate.holding("team-c") as team_c, pytest.raises(ServerBusy, match="team-c"):
            team_c(1)


def test_held_bytes_are_given_back_when_the_body_is_answered() -> None:
    gate = ManifestGate(held_bytes=100, wait_seconds=0)
    for _ in range(3):
        with gate.holding("team-a") as team_a:
            team_a(50)


def test_a_body_waits_for_bytes_another_gives_back() -> None:
    gate = ManifestGate(held_bytes=100, wait_seconds=DEADLINE)
    first = gate.holding("team-a")
    first.__enter__()(50)
    arrived = threading.Event()

    def second() -> None:
        with gate.holding("team-a") as team_a:
            team_a(50)
            arrived.set()

    waiter = threading.Thread(target=second)
    waiter.start()
    assert not arrived.wait(WAIT_SECONDS)
    first.__exit__(None, None, None)
    waiter.join(DEADLINE)
    assert arrived.is_set()
