"""ResourceQuota arithmetic for alauda.io/imagestreams."""

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quota.decision import Cause, Decision
from quota.fielderrors import ErrorType
from quota.resourcequota import (
    ChargePlan,
    QuotaCharge,
    desired_used,
    has_scopes,
    names_resource,
    newer_quota,
    plan_create,
    quota_charge,
    quota_exceeded_message,
    quota_matches,
    used_update,
    with_used,
)

R = "alauda.io/imagestreams"


def rq(
    name: str = "q",
    hard: Any = "5",
    used: Any = None,
    extra_hard: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": name, "namespace": "team-a", "resourceVersion": "7"},
        "spec": {"hard": {R: hard, **(extra_hard or {})}, **spec},
    }
    if used is not None:
        obj["status"] = {"hard": {R: hard}, "used": {R: used, "pods": "3"}}
    return obj


def test_quota_message_matches_the_contract_exactly() -> None:
    assert quota_exceeded_message("compute", 1, 5, 5) == (
        "exceeded quota: compute, requested: alauda.io/imagestreams=1, "
        "used: alauda.io/imagestreams=5, limited: alauda.io/imagestreams=5"
    )


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (rq(), True),
        ({"spec": {"hard": {"pods": "1"}}}, False),
        ({"spec": {"hard": None}}, False),
        ({"spec": {"hard": [R]}}, False),
        ({"spec": None}, False),
        ({}, False),
        ({"status": {"used": {R: "1"}}}, False),  # status alone does not name it
    ],
)
def test_names_resource(obj: dict[str, Any], expected: bool) -> None:
    assert names_resource(obj) is expected


@pytest.mark.parametrize(
    ("spec", "scoped"),
    [
        ({}, False),
        ({"scopes": []}, False),
        ({"scopes": None}, False),
        ({"scopeSelector": {}}, False),
        ({"scopeSelector": {"matchExpressions": []}}, False),
        ({"scopeSelector": None}, False),
        ({"scopes": ["BestEffort"]}, True),
        (
            {
                "scopeSelector": {
                    "matchExpressions": [{"scopeName": "PriorityClass", "operator": "Exists"}]
                }
            },
            True,
        ),
    ],
)
def test_scoped_quotas_do_not_match(spec: dict[str, Any], scoped: bool) -> None:
    obj = rq(**spec)
    assert has_scopes(obj) is scoped
    assert quota_matches(obj) is not scoped


def test_create_without_quotas_is_allowed_and_charges_nothing() -> None:
    assert plan_create([]) == ChargePlan(Decision.allow())
    assert plan_create([{"spec": {"hard": {"pods": "1"}}}]) == ChargePlan(Decision.allow())


def test_create_with_room_charges_one() -> None:
    plan = plan_create([rq(hard="5", used="4")])
    assert plan.decision.allowed
    assert plan.charges == (QuotaCharge("q", 5, 4, 1),)
    assert plan.charges[0].new_used == "5"
    assert plan.denied_by is None
    assert plan.decision.message == "" and plan.decision.code == 200


def test_missing_used_is_unknown_not_zero() -> None:
    """Ten streams and a new quota of five must not let five more in before the usage
    reconciler has counted them: Kubernetes' own rule for a quota it has not counted."""
    for obj in (rq(hard="5"), {**rq(hard="5"), "status": {"used": None}}, {**rq(), "status": None}):
        plan = plan_create([obj])
        assert plan.decision == Decision.deny(
            "status unknown for quota: q, resources: alauda.io/imagestreams", Cause.QUOTA_UNKNOWN
        )
        assert (plan.decision.code, plan.decision.retryable) == (403, True)
        assert plan.charges == ()


def test_one_unknown_quota_denies_even_when_others_have_room() -> None:
    plan = plan_create([rq("b", hard="9", used="0"), rq("z"), rq("a")])
    assert plan.decision.message == "status unknown for quota: a, resources: alauda.io/imagestreams"
    assert [charge.name for charge in plan.charges] == ["b"]


def test_a_counted_quota_is_known_even_at_zero() -> None:
    plan = plan_create([rq(hard="5", used="0")])
    assert plan.decision.allowed
    assert plan.charges[0].new_used == "1"


def test_full_quota_denies_with_the_contract_message() -> None:
    plan = plan_create([rq("compute", hard="5", used="5")])
    assert not plan.decision.allowed
    assert plan.decision.reason == "Forbidden"
    assert plan.decision.code == 403
    assert plan.decision.message == (
        "exceeded quota: compute, requested: alauda.io/imagestreams=1, "
        "used: alauda.io/imagestreams=5, limited: alauda.io/imagestreams=5"
    )
    assert plan.denied_by == QuotaCharge("compute", 5, 5, 1)


def test_zero_hard_denies_the_first_create() -> None:
    plan = plan_create([rq(hard="0", used="0")])
    assert not plan.decision.allowed
    assert (
        "used: alauda.io/imagestreams=0, limited: alauda.io/imagestreams=0" in plan.decision.message
    )


def test_over_used_quota_stays_denied() -> None:
    assert not plan_create([rq(hard="3", used="7")]).decision.allowed


def test_all_matching_quotas_are_charged_or_none() -> None:
    plan = plan_create([rq("b", hard="10", used="2"), rq("a", hard="3", used="1")])
    assert plan.decision.allowed
    assert [(c.name, c.new_used) for c in plan.charges] == [("a", "2"), ("b", "3")]

    plan = plan_create([rq("b", hard="10", used="2"), rq("a", hard="3", used="3")])
    assert not plan.decision.allowed
    assert plan.decision.message.startswith("exceeded quota: a,")
    assert len(plan.charges) == 2  # the caller writes none of them


def test_the_first_full_quota_by_name_is_reported() -> None:
    plan = plan_create([rq("z", hard="1", used="1"), rq("m", hard="2", used="2")])
    assert plan.decision.message.startswith("exceeded quota: m,")


def test_scoped_and_unrelated_quotas_are_not_charged() -> None:
    plan = plan_create(
        [
            rq("scoped", hard="0", scopes=["NotTerminating"]),
            {"metadata": {"name": "pods"}, "spec": {"hard": {"pods": "0"}}},
            None,  # type: ignore[list-item]
            rq("real", hard="2", used="1"),
        ]
    )
    assert plan.decision.allowed
    assert [c.name for c in plan.charges] == ["real"]


def test_quantities_in_other_forms() -> None:
    assert plan_create([rq(hard="1k", used="999")]).charges[0] == QuotaCharge("q", 1000, 999, 1)
    assert plan_create([rq(hard=5, used=4)]).decision.allowed
    # fractional values: hard rounded down, used rounded up (conservative)
    assert plan_create([rq(hard="5500m", used="4")]).charges[0].hard == 5
    assert not plan_create([rq(hard="5500m", used="5")]).decision.allowed
    charge = plan_create([rq(hard="5", used="3500m")]).charges[0]
    assert (charge.used, charge.new_used) == (4, "5")


@pytest.mark.parametrize("hard", ["lots", "-1", None, "NaN", {"x": 1}])
def test_unusable_hard_is_skipped_and_reported(hard: Any) -> None:
    plan = plan_create([rq("broken", hard=hard, used="0"), rq("ok", hard="1", used="1")])
    assert [c.name for c in plan.charges] == ["ok"]
    assert not plan.decision.allowed
    [problem] = plan.problems
    assert (problem.kind, problem.name) == ("ResourceQuota", "broken")
    assert problem.error.path == "spec.hard[alauda.io/imagestreams]"
    assert str(problem).startswith('ResourceQuota "broken": spec.hard[alauda.io/imagestreams]: ')


@pytest.mark.parametrize("used", ["garbage", "-2", [], {"a": 1}])
def test_unusable_used_counts_as_zero_and_is_reported(used: Any) -> None:
    obj = rq("q", hard="2")
    obj["status"] = {"used": {R: used}}
    plan = plan_create([obj])
    assert plan.decision.allowed
    assert plan.charges == (QuotaCharge("q", 2, 0, 1),)
    [problem] = plan.problems
    assert problem.error.path == "status.used[alauda.io/imagestreams]"
    assert problem.error.detail.endswith("; counted as 0")


def test_quota_charge_for_several_objects() -> None:
    charge, errors = quota_charge(rq(hard="5", used="3"), requested=2)
    assert errors == []
    assert charge == QuotaCharge("q", 5, 3, 2)
    assert charge.fits and charge.new_used == "5"
    assert not plan_create([rq(hard="5", used="4")], requested=2).decision.allowed
    assert (
        "requested: alauda.io/imagestreams=2"
        in plan_create([rq(hard="5", used="4")], 2).decision.message
    )


def test_with_used_sets_only_our_entry_and_copies() -> None:
    obj = rq(hard="5", used="2")
    original = copy.deepcopy(obj)
    updated = with_used(obj, "3")
    assert obj == original
    assert updated["status"]["used"] == {R: "3", "pods": "3"}
    assert updated["status"]["hard"] == {R: "5"}
    assert updated["metadata"]["resourceVersion"] == "7"
    updated["spec"]["hard"][R] = "changed"
    assert obj["spec"]["hard"][R] == "5"  # deep copy


@pytest.mark.parametrize("status", [None, {}, {"used": None}, {"used": []}, "x"])
def test_with_used_creates_missing_status(status: Any) -> None:
    obj = rq()
    obj["status"] = status
    assert with_used(obj, "1")["status"]["used"] == {R: "1"}
    assert with_used(rq(), "0")["status"] == {"used": {R: "0"}}


def test_desired_used() -> None:
    assert desired_used(0) == "0"
    assert desired_used(42) == "42"
    for bad in (-1, True, 1.0, "3"):
        with pytest.raises(ValueError, match="non-negative integer"):
            desired_used(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("used", "count", "expected"),
    [
        (None, 0, "0"),
        ("3", 3, None),
        ("3000m", 3, None),
        ("3", 2, "2"),
        ("2", 5, "5"),
        ("junk", 1, "1"),
        ("-1", 0, "0"),
    ],
)
def test_used_update(used: Any, count: int, expected: str | None) -> None:
    assert used_update(rq(used=used), count) == expected


def test_used_update_without_status() -> None:
    assert used_update({"spec": {"hard": {R: "1"}}}, 0) == "0"


# --- property (d): N sequential charges against room for K admit exactly K -------------


@given(
    st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), min_size=1, max_size=3),
    st.integers(0, 30),
)
def test_sequential_charges_admit_exactly_the_room(
    quotas: list[tuple[int, int]], attempts: int
) -> None:
    cluster = [rq(f"q{i}", hard=str(hard), used=str(used)) for i, (hard, used) in enumerate(quotas)]
    room = min(max(hard - used, 0) for hard, used in quotas)
    admitted = 0
    for _ in range(attempts):
        plan = plan_create(cluster)
        if plan.decision.allowed:
            by_name = {charge.name: charge.new_used for charge in plan.charges}
            cluster = [with_used(q, by_name[q["metadata"]["name"]]) for q in cluster]
            admitted += 1
        else:
            assert plan.decision.message.startswith("exceeded quota: ")
    assert admitted == min(attempts, room)
    for (hard, used), quota in zip(quotas, cluster, strict=True):
        assert quota["status"]["used"][R] == str(used + admitted)
        assert used + admitted <= max(hard, used)


def test_problems_carry_the_error_type_the_bad_value_and_why() -> None:
    broken = rq("broken", hard="-1", used="0")
    bad_used = rq("q", hard="2")
    bad_used["status"] = {"used": {R: "-2"}}
    plan = plan_create([broken, bad_used])
    hard_error, used_error = (problem.error for problem in plan.problems)
    assert (hard_error.type, hard_error.value, hard_error.detail) == (
        ErrorType.INVALID,
        "-1",
        "must be greater than or equal to 0",
    )
    assert (used_error.type, used_error.value, used_error.detail) == (
        ErrorType.INVALID,
        "-2",
        "must be greater than or equal to 0; counted as 0",
    )


def test_one_imagestream_is_charged_unless_told_otherwise() -> None:
    charge, _ = quota_charge(rq(hard="5", used="3"))
    assert charge is not None and charge.requested == 1 and charge.new_used == "4"


def test_a_fractional_used_that_equals_the_count_needs_no_write() -> None:
    assert used_update(rq(hard="5", used="5000m"), 5) is None
    assert used_update(rq(hard="5", used="4500m"), 5) == "5"


def test_an_unknown_quota_still_reports_the_problems_of_the_others() -> None:
    plan = plan_create([rq("new"), rq("broken", hard="-1", used="0")])
    assert plan.decision.message.startswith("status unknown for quota: new")
    assert [(problem.name, problem.error.path) for problem in plan.problems] == [
        ("broken", "spec.hard[alauda.io/imagestreams]")
    ]


# --- the newer of the cached quota and the one our last write returned ----------------------


def versioned(uid: str | None, rv: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "q", "namespace": "team-a", "resourceVersion": rv}
    if uid is not None:
        meta["uid"] = uid
    return {"metadata": meta, "status": {"used": {R: "1"}}}


def test_nothing_written_means_the_cache() -> None:
    cached = versioned("u1", "10")
    assert newer_quota(cached, None) is cached


@pytest.mark.parametrize(
    ("cached", "written", "winner"),
    [
        (versioned("u1", "10"), versioned("u1", "11"), "written"),  # the cache lags our write
        (versioned("u1", "12"), versioned("u1", "11"), "cached"),  # someone wrote since
        (versioned("u1", "11"), versioned("u1", "11"), "cached"),  # the cache caught up
        (versioned("u1", "9"), versioned("u1", "100"), "written"),  # numbers, not strings
        (versioned("u2", "10"), versioned("u1", "11"), "cached"),  # deleted and recreated
        (versioned(None, "10"), versioned(None, "11"), "cached"),  # no uid: cannot tell
        (versioned("u1", "10"), versioned(None, "11"), "cached"),
        (versioned("u1", "x"), versioned("u1", "11"), "cached"),  # not etcd revisions
        (versioned("u1", "10"), versioned("u1", "1e9"), "cached"),
        (versioned("u1", "10"), versioned("u1", 11), "cached"),  # not a string
        (versioned("u1", None), versioned("u1", "11"), "cached"),
        (versioned("u1", "10"), versioned("u1", "\u0661\u0662"), "cached"),  # digits, not ASCII
    ],
)
def test_the_written_quota_wins_only_when_the_same_object_is_strictly_newer(
    cached: dict[str, Any], written: dict[str, Any], winner: str
) -> None:
    chosen = newer_quota(cached, written)
    assert chosen is (written if winner == "written" else cached)


S = "alauda.io/image-storage"


def storage_quota(hard: Any = "1Mi", used: Any = None, name: str = "space") -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": name, "namespace": "team-a", "resourceVersion": "7"},
        "spec": {"hard": {S: hard}},
    }
    if used is not None:
        obj["status"] = {"used": {S: used}}
    return obj


def test_a_storage_denial_reads_like_native_quota_in_binary_quantities() -> None:
    plan = plan_create([storage_quota(used="600Ki")], 600 * 1024, S)
    assert not plan.decision.allowed
    assert plan.decision.cause is Cause.QUOTA_EXCEEDED
    assert plan.decision.message == (
        "exceeded quota: space, requested: alauda.io/image-storage=600Ki, "
        "used: alauda.io/image-storage=600Ki, limited: alauda.io/image-storage=1Mi"
    )


def test_a_storage_charge_writes_bytes_as_a_binary_quantity() -> None:
    plan = plan_create([storage_quota(used="100Ki")], 300 * 1024, S)
    assert plan.decision.allowed
    assert [charge.new_used for charge in plan.charges] == ["400Ki"]
    odd = plan_create([storage_quota(used="0")], 1000, S)
    assert [charge.new_used for charge in odd.charges] == ["1000"]


def test_storage_and_imagestreams_quotas_are_judged_apart() -> None:
    both = storage_quota(used="1Mi")
    both["spec"]["hard"][R] = "5"
    both["status"]["used"][R] = "1"
    assert plan_create([both]).decision.allowed  # a stream: room
    assert not plan_create([both], 1, S).decision.allowed  # a byte: none
    assert plan_create([rq(used="5")], 1, S).decision.allowed  # no storage quota


def test_a_push_of_no_new_bytes_needs_no_room_even_in_a_full_or_uncounted_quota() -> None:
    for quota in (storage_quota(used="2Mi"), storage_quota()):
        plan = plan_create([quota], 0, S)
        assert plan.decision.allowed
        assert plan.charges == ()


def test_storage_usage_not_computed_yet_is_unknown_not_zero() -> None:
    plan = plan_create([storage_quota()], 1, S)
    assert plan.decision.cause is Cause.QUOTA_UNKNOWN
    assert plan.decision.retryable
    assert plan.decision.message == (
        "status unknown for quota: space, resources: alauda.io/image-storage"
    )


def test_used_update_compares_bytes_as_quantities() -> None:
    assert used_update(storage_quota(used="1Mi"), 1024 * 1024, S) is None
    assert used_update(storage_quota(used="1Mi"), 1000, S) == "1000"
    assert with_used(storage_quota(), "3Ki", S)["status"]["used"] == {S: "3Ki"}
