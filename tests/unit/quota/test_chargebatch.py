"""A batch of charges in one namespace: each waiter's verdict, and the one write per quota."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from quota.chargebatch import ChargeRequest, plan_batch
from quota.decision import Cause
from quota.resourcequota import plan_create, quota_exceeded_message
from quota.resources import RESOURCE_IMAGE_STORAGE, RESOURCE_IMAGESTREAMS

R = RESOURCE_IMAGESTREAMS
S = RESOURCE_IMAGE_STORAGE
ONE = ChargeRequest()


def rq(name: str, hard: dict[str, str], used: dict[str, str], rv: str = "7") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": name, "namespace": "team-a", "resourceVersion": rv},
        "spec": {"hard": dict(hard)},
        "status": {"hard": dict(hard), "used": {"pods": "3", **used}},
    }


def streams(name: str, hard: int, used: int, rv: str = "7") -> dict[str, Any]:
    return rq(name, {R: str(hard), "pods": "10"}, {R: str(used)}, rv)


def allowed(batch: Any) -> list[bool]:
    return [plan.decision.allowed for plan in batch.plans]


def test_eight_waiters_with_room_for_all_write_the_quota_once() -> None:
    batch = plan_batch([streams("q", 10, 2)], [ONE] * 8)
    assert allowed(batch) == [True] * 8
    assert len(batch.writes) == 1
    assert batch.writes[0]["status"]["used"][R] == "10"
    assert batch.charged == {"q": {R: 8}}


def test_the_write_keeps_the_read_resource_version_and_other_usage() -> None:
    (write,) = plan_batch([streams("q", 10, 2, rv="41")], [ONE, ONE]).writes
    assert write["metadata"]["resourceVersion"] == "41"
    assert write["status"]["used"] == {"pods": "3", R: "4"}


def test_room_for_k_admits_the_first_k_waiters_and_denies_the_rest() -> None:
    batch = plan_batch([streams("q", 5, 2)], [ONE] * 5)
    assert allowed(batch) == [True, True, True, False, False]
    assert batch.writes[0]["status"]["used"][R] == "5"
    denied = batch.plans[3].decision
    assert denied.cause is Cause.QUOTA_EXCEEDED
    assert denied.message == quota_exceeded_message("q", 1, 5, 5)


def test_one_waiters_denial_does_not_deny_a_smaller_one_after_it() -> None:
    quota = rq("bytes", {S: "1Mi"}, {S: "512Ki"})
    big, small = ChargeRequest(600 * 1024, S), ChargeRequest(100 * 1024, S)
    batch = plan_batch([quota], [big, small])
    assert allowed(batch) == [False, True]
    assert batch.writes[0]["status"]["used"][S] == "612Ki"
    assert batch.charged == {"bytes": {S: 100 * 1024}}


def test_a_batch_where_all_are_denied_writes_nothing() -> None:
    batch = plan_batch([streams("q", 3, 3)], [ONE, ONE])
    assert allowed(batch) == [False, False]
    assert batch.writes == ()
    assert batch.any_denied


def test_unknown_usage_denies_every_waiter_retryably_and_writes_nothing() -> None:
    quota = rq("q", {R: "5"}, {})
    batch = plan_batch([quota], [ONE, ONE])
    assert [plan.decision.cause for plan in batch.plans] == [Cause.QUOTA_UNKNOWN] * 2
    assert batch.writes == ()


def test_no_matching_quota_allows_all_and_writes_nothing() -> None:
    batch = plan_batch([rq("pods", {"pods": "10"}, {})], [ONE] * 3)
    assert allowed(batch) == [True] * 3
    assert batch.writes == ()
    assert not batch.any_denied


def test_two_quotas_each_written_once_in_name_order_with_the_smaller_room_binding() -> None:
    batch = plan_batch([streams("z", 10, 0), streams("a", 2, 0)], [ONE] * 3)
    assert allowed(batch) == [True, True, False]
    assert [w["metadata"]["name"] for w in batch.writes] == ["a", "z"]
    assert [w["status"]["used"][R] for w in batch.writes] == ["2", "2"]


def test_two_resources_on_one_quota_are_one_write() -> None:
    quota = rq("both", {R: "5", S: "1Mi"}, {R: "1", S: "0"})
    batch = plan_batch([quota], [ONE, ChargeRequest(1024, S)])
    assert allowed(batch) == [True, True]
    (write,) = batch.writes
    assert write["status"]["used"][R] == "2"
    assert write["status"]["used"][S] == "1Ki"
    assert batch.charged == {"both": {R: 1, S: 1024}}


def test_a_request_of_nothing_is_allowed_and_charges_nothing() -> None:
    batch = plan_batch([rq("bytes", {S: "1Mi"}, {S: "1Mi"})], [ChargeRequest(0, S)])
    assert allowed(batch) == [True]
    assert batch.writes == ()


@given(
    hard=st.integers(min_value=0, max_value=20),
    used=st.integers(min_value=0, max_value=20),
    waiters=st.integers(min_value=1, max_value=12),
)
def test_a_batch_admits_exactly_the_room_and_a_batch_of_one_decides_as_a_single_charge(
    hard: int, used: int, waiters: int
) -> None:
    quota = streams("q", hard, used)
    batch = plan_batch([quota], [ONE] * waiters)
    room = max(hard - used, 0)
    assert sum(allowed(batch)) == min(room, waiters)
    assert plan_batch([quota], [ONE]).plans[0] == plan_create([quota])
