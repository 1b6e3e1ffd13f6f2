"""QuotaCharger against a fake quota gateway that enforces resourceVersion preconditions."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable

import pytest
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import ReadTimeoutError

from quota.decision import Cause, Decision
from quota.objects import Obj
from quota.resourcequota import quota_exceeded_message
from serving.quotacharge import (
    CHARGE_DEADLINE_SECONDS,
    REQUEST_TIMEOUT,
    ChargeConflict,
    QuotaCharger,
    WrittenQuotas,
)
from webhook.admission.endpoints import VALIDATE_IMAGESTREAMS
from webhook.registration import TIMEOUT_SECONDS

NS = "team-a"
R = "alauda.io/imagestreams"
DEADLINE = 30.0


def quota(name: str, hard: int, used: int | None = None, rv: int = 1) -> Obj:
    obj: Obj = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "resourceVersion": str(rv),
        },
        "spec": {"hard": {R: str(hard), "pods": "10"}},
        "status": {"hard": {R: str(hard), "pods": "10"}, "used": {"pods": "3"}},
    }
    if used is not None:
        obj["status"]["used"][R] = str(used)
    return obj


class FakeQuotas:
    """ResourceQuotas of one namespace; status writes need the current resourceVersion."""

    def __init__(self, *quotas: Obj) -> None:
        self._lock = threading.Lock()
        self.store: dict[str, Obj] = {q["metadata"]["name"]: copy.deepcopy(q) for q in quotas}
        self.lists = 0
        self.reads = 0
        self.writes: list[tuple[str, str]] = []  # (name, written used) of successful writes
        self.conflicts = 0
        self.fail_writes: dict[str, int] = {}  # name -> HTTP status to fail writes with
        self.timeouts: list[float] = []  # the timeout each call was given
        self.on_call: Callable[[], None] = lambda: None

    def used(self, name: str) -> str | None:
        with self._lock:
            value: str | None = self.store[name]["status"]["used"].get(R)
            return value

    def set_used(self, name: str, used: int) -> None:
        """Another writer (a replica, the reconciler) changes the quota."""
        with self._lock:
            current = self.store[name]
            current["status"]["used"][R] = str(used)
            current["metadata"]["resourceVersion"] = self._next_rv()

    def _next_rv(self) -> str:
        """etcd's revision: one counter for every object, so a recreated quota is newer."""
        self.revision = getattr(self, "revision", 100) + 1
        return str(self.revision)

    def recreate(self, name: str, used: int) -> None:
        """The quota is deleted and created again under the same name (a new uid)."""
        with self._lock:
            current = copy.deepcopy(self.store[name])
            current["metadata"]["uid"] += "-again"
            current["metadata"]["resourceVersion"] = self._next_rv()
            current["status"]["used"][R] = str(used)
            self.store[name] = current

    def delete(self, name: str) -> None:
        with self._lock:
            del self.store[name]

    def snapshot(self) -> list[Obj]:
        with self._lock:
            return copy.deepcopy(list(self.store.values()))

    def list(self, namespace: str, *, timeout: float) -> list[Obj]:
        assert namespace == NS
        self.timeouts.append(timeout)
        self.on_call()
        with self._lock:
            self.lists += 1
            return copy.deepcopy(list(self.store.values()))

    def read(self, namespace: str, name: str, *, timeout: float) -> Obj:
        assert namespace == NS
        self.timeouts.append(timeout)
        self.on_call()
        with self._lock:
            self.reads += 1
            if name not in self.store:
                raise ApiException(status=404)
            return copy.deepcopy(self.store[name])

    def replace_status(self, body: Obj, *, timeout: float) -> Obj:
        name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
        assert namespace == NS
        self.timeouts.append(timeout)
        self.on_call()
        with self._lock:
            if name in self.fail_writes:
                raise ApiException(status=self.fail_writes[name])
            current = self.store.get(name)
            if current is None:
                raise ApiException(status=404)
            if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                self.conflicts += 1
                raise ApiException(status=409)
            updated = copy.deepcopy(current)
            updated["status"] = copy.deepcopy(body["status"])
            updated["metadata"]["resourceVersion"] = self._next_rv()
            self.store[name] = updated
            self.writes.append((name, updated["status"]["used"].get(R)))
            return copy.deepcopy(updated)


class AlwaysConflicting(FakeQuotas):
    def replace_status(self, body: Obj, *, timeout: float) -> Obj:
        self.timeouts.append(timeout)
        self.on_call()
        with self._lock:
            self.conflicts += 1
        raise ApiException(status=409)


def charger(
    api: FakeQuotas, cached: Callable[[str], list[Obj]] | None = None, attempts: int = 12
) -> QuotaCharger:
    def from_api(namespace: str) -> list[Obj]:
        assert namespace == NS
        return api.snapshot()

    return QuotaCharger(api, cached or from_api, attempts=attempts)


def frozen(quotas: list[Obj]) -> Callable[[str], list[Obj]]:
    """A cache that never catches up: always the same (deep-copied) objects."""
    saved = copy.deepcopy(quotas)
    return lambda namespace: copy.deepcopy(saved)


def test_no_matching_quota_allows_without_writing() -> None:
    api = FakeQuotas({**quota("other", 5), "spec": {"hard": {"pods": "5"}}})
    plan = charger(api).charge(NS)
    assert plan.decision.allowed is True
    assert plan.charges == ()
    assert api.writes == [] and api.lists == 0


def test_a_charge_with_a_fresh_cache_writes_once_without_a_live_read() -> None:
    api = FakeQuotas(quota("q", 5, used=2))
    plan = charger(api).charge(NS)
    assert plan.decision.allowed is True
    assert [c.name for c in plan.charges] == ["q"]
    assert api.writes == [("q", "3")]
    assert api.lists == 0
    assert api.store["q"]["status"]["used"]["pods"] == "3", "other used entries are kept"


def test_a_quota_not_counted_yet_is_confirmed_live_then_denied_without_a_write() -> None:
    api = FakeQuotas(quota("q", 1))
    plan = charger(api).charge(NS)
    assert plan.decision == Decision.deny(
        "status unknown for quota: q, resources: alauda.io/imagestreams", Cause.QUOTA_UNKNOWN
    )
    assert api.lists == 1, "the cache may lag the reconciler's first count"
    assert api.writes == []


def test_a_quota_counted_since_the_cache_saw_it_is_charged() -> None:
    api = FakeQuotas(quota("q", 2))
    cache = frozen(api.snapshot())
    api.set_used("q", 0)  # the usage reconciler counted it; our cache has not seen that
    assert charger(api, cache).charge(NS).decision.allowed is True
    assert api.used("q") == "1"


def test_a_stale_cache_conflicts_then_the_live_quota_is_charged() -> None:
    api = FakeQuotas(quota("q", 5, used=1))
    cache = frozen(api.snapshot())
    api.set_used("q", 3)  # another replica charged twice; our cache has not seen it
    plan = charger(api, cache).charge(NS)
    assert plan.decision.allowed is True
    assert api.conflicts == 1
    assert api.lists == 1
    assert api.writes == [("q", "4")], "the charge must build on the live value, not the cache"


def test_a_full_cache_is_confirmed_live_and_a_release_lets_the_create_in() -> None:
    api = FakeQuotas(quota("q", 5, used=5))
    cache = frozen(api.snapshot())
    api.set_used("q", 4)  # the reconciler released a charge; the cache still says full
    plan = charger(api, cache).charge(NS)
    assert plan.decision.allowed is True
    assert api.lists == 1
    assert api.writes == [("q", "5")]


def test_exceeded_is_confirmed_by_a_live_read_and_writes_nothing() -> None:
    api = FakeQuotas(quota("q", 5, used=5))
    plan = charger(api).charge(NS)
    assert plan.decision.allowed is False
    assert plan.decision.code == 403
    assert plan.decision.reason == "Forbidden"
    assert plan.decision.message == (
        "exceeded quota: q, requested: alauda.io/imagestreams=1, "
        "used: alauda.io/imagestreams=5, limited: alauda.io/imagestreams=5"
    )
    assert api.lists == 1
    assert api.writes == []
    assert api.used("q") == "5"


def test_the_denial_reports_the_live_numbers() -> None:
    api = FakeQuotas(quota("q", 5, used=5))
    cache = frozen(api.snapshot())
    api.set_used("q", 7)
    plan = charger(api, cache).charge(NS)
    assert plan.decision.message == quota_exceeded_message("q", 1, 7, 5)


def test_several_quotas_are_all_charged() -> None:
    api = FakeQuotas(quota("q-b", 9, used=1), quota("q-a", 3, used=2))
    plan = charger(api).charge(NS)
    assert plan.decision.allowed is True
    assert sorted(api.writes) == [("q-a", "3"), ("q-b", "2")]


def test_several_quotas_all_or_none_releases_the_first_when_the_second_is_full() -> None:
    api = FakeQuotas(quota("q-a", 5, used=1), quota("q-b", 5, used=4))
    cache = frozen(api.snapshot())
    api.set_used("q-b", 5)  # filled by someone else; the cache still shows room
    plan = charger(api, cache).charge(NS)
    assert plan.decision.allowed is False
    assert plan.decision.message == quota_exceeded_message("q-b", 1, 5, 5)
    assert api.used("q-a") == "1", "the charge on q-a must be taken back"
    assert api.used("q-b") == "5"
    assert api.writes == [("q-a", "2"), ("q-a", "1")]


def test_a_failed_write_releases_earlier_charges_and_raises() -> None:
    api = FakeQuotas(quota("q-a", 5, used=1), quota("q-b", 5, used=1))
    api.fail_writes["q-b"] = 500
    with pytest.raises(ApiException) as raised:
        charger(api).charge(NS)
    assert raised.value.status == 500
    assert api.used("q-a") == "1"
    assert api.used("q-b") == "1"


def test_too_many_conflicts_raise_charge_conflict() -> None:
    api = AlwaysConflicting(quota("q", 5, used=0))
    with pytest.raises(ChargeConflict, match="too many concurrent writes"):
        charger(api, attempts=3).charge(NS)
    assert api.conflicts == 3


def test_judge_never_writes_and_confirms_a_denial_live() -> None:
    api = FakeQuotas(quota("q", 5, used=5))
    cache = frozen(api.snapshot())
    judge = charger(api, cache)
    assert judge.judge(NS).decision.allowed is False
    assert api.lists == 1
    api.set_used("q", 4)
    assert judge.judge(NS).decision.allowed is True
    assert api.lists == 2
    assert api.writes == []


def test_judge_trusts_a_cache_with_room() -> None:
    api = FakeQuotas(quota("q", 5, used=1))
    assert charger(api).judge(NS).decision.allowed is True
    assert api.lists == 0 and api.writes == []


def _race(chargers: list[QuotaCharger], threads_each: int) -> tuple[int, int, list[BaseException]]:
    total = len(chargers) * threads_each
    start = threading.Barrier(total)
    lock = threading.Lock()
    admitted = denied = 0
    errors: list[BaseException] = []

    def worker(made: QuotaCharger) -> None:
        nonlocal admitted, denied
        try:
            start.wait(timeout=DEADLINE)
            plan = made.charge(NS)
        except BaseException as err:
            with lock:
                errors.append(err)
            return
        with lock:
            if plan.decision.allowed:
                admitted += 1
            else:
                denied += 1

    threads = [
        threading.Thread(target=worker, args=(made,), daemon=True)
        for made in chargers
        for _ in range(threads_each)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DEADLINE)
    assert not any(thread.is_alive() for thread in threads), "a charge hung"
    return admitted, denied, errors


ROOM = 6


def test_concurrent_creates_in_one_replica_admit_exactly_the_room() -> None:
    api = FakeQuotas(quota("q", ROOM, used=0))
    admitted, denied, errors = _race([charger(api)], threads_each=20)
    assert errors == []
    assert (admitted, denied) == (ROOM, 20 - ROOM)
    assert api.used("q") == str(ROOM)


def test_concurrent_creates_in_two_replicas_admit_exactly_the_room() -> None:
    api = FakeQuotas(quota("q", ROOM, used=0))
    stale = frozen(api.snapshot())  # neither replica's cache ever catches up
    admitted, denied, errors = _race([charger(api, stale), charger(api, stale)], 12)
    assert errors == []
    assert (admitted, denied) == (ROOM, 24 - ROOM)
    assert api.used("q") == str(ROOM)
    counts = [int(used) for _, used in api.writes if used is not None]
    assert counts == sorted(set(counts)) and counts[-1] == ROOM, "every write adds, none undoes"


def test_concurrent_creates_against_two_quotas_admit_the_smaller_room() -> None:
    api = FakeQuotas(quota("q-a", ROOM, used=0), quota("q-b", ROOM - 2, used=0))
    stale = frozen(api.snapshot())
    admitted, _, errors = _race([charger(api, stale), charger(api, stale)], 8)
    assert errors == []
    assert admitted == ROOM - 2
    assert api.used("q-a") == str(ROOM - 2)
    assert api.used("q-b") == str(ROOM - 2)


def test_one_replica_never_runs_two_charges_of_a_namespace_at_once() -> None:
    """Threads of one replica queue on a per-namespace lock instead of conflicting."""
    writing = threading.Event()
    overlapped = threading.Event()

    class SlowWrites(FakeQuotas):
        def replace_status(self, body: Obj, *, timeout: float) -> Obj:
            if not writing.is_set():
                writing.set()
                overlapped.wait(timeout=0.5)  # give a second charge the chance to start
            return super().replace_status(body, timeout=timeout)

    api = SlowWrites(quota("q", 5, used=0))

    def cache(namespace: str) -> list[Obj]:
        if writing.is_set():
            overlapped.set()  # only reached while the first charge still writes if unlocked
        return api.snapshot()

    made = charger(api, cache)
    results: list[bool] = []
    first = threading.Thread(target=lambda: results.append(made.charge(NS).decision.allowed))
    first.start()
    assert writing.wait(timeout=DEADLINE)
    second = threading.Thread(target=lambda: results.append(made.charge(NS).decision.allowed))
    second.start()
    first.join(timeout=DEADLINE)
    second.join(timeout=DEADLINE)
    assert not first.is_alive() and not second.is_alive()
    assert results == [True, True]
    assert api.conflicts == 0
    assert api.used("q") == "2"


# --- the charge's deadline -----------------------------------------------------------------


class StepClock:
    """Monotonic time that moves one second per API call (a slow API server)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def step(self) -> None:
        self.now += 1.0


def test_the_deadline_is_inside_the_webhook_timeout() -> None:
    assert TIMEOUT_SECONDS[VALIDATE_IMAGESTREAMS] > CHARGE_DEADLINE_SECONDS


def test_a_charge_that_keeps_conflicting_gives_up_at_its_deadline() -> None:
    clock = StepClock()
    api = AlwaysConflicting(quota("q", 5, used=0))
    api.on_call = clock.step
    made = QuotaCharger(api, lambda ns: api.snapshot(), deadline_seconds=4.0, clock=clock)
    with pytest.raises(ChargeConflict, match="no charge within 4"):
        made.charge(NS)
    assert clock.now - 100.0 <= 4.0 + 1.0, "at most one call may end past the deadline"
    assert all(0 < timeout <= 4.0 for timeout in api.timeouts)


def test_calls_get_at_most_the_time_that_is_left() -> None:
    clock = StepClock()
    api = AlwaysConflicting(quota("q", 5, used=0))
    api.on_call = clock.step
    made = QuotaCharger(api, lambda ns: api.snapshot(), deadline_seconds=7.5, clock=clock)
    with pytest.raises(ChargeConflict):
        made.charge(NS)
    assert api.timeouts[0] == REQUEST_TIMEOUT
    assert api.timeouts[-1] < 1.0 + 1e-9


def test_a_charge_waits_for_another_in_its_namespace_only_until_its_deadline() -> None:
    writing, release = threading.Event(), threading.Event()

    class SlowWrites(FakeQuotas):
        def replace_status(self, body: Obj, *, timeout: float) -> Obj:
            writing.set()
            release.wait(DEADLINE)
            return super().replace_status(body, timeout=timeout)

    api = SlowWrites(quota("q", 5, used=0))
    made = QuotaCharger(api, lambda ns: api.snapshot(), deadline_seconds=0.3)
    first = threading.Thread(target=lambda: made.charge(NS))
    first.start()
    assert writing.wait(DEADLINE)
    # Should the second charge wait without limit, the first ends after a second and the
    # test fails on the missing ChargeConflict instead of hanging.
    unblock = threading.Timer(1.0, release.set)
    unblock.start()
    try:
        with pytest.raises(ChargeConflict, match="another charge in this namespace"):
            made.charge(NS)
    finally:
        release.set()
        unblock.cancel()
        first.join(DEADLINE)


# --- per-namespace queues are pruned ---------------------------------------------------------


class NoQuotas:
    """Any namespace, none with a quota (a cluster with namespace churn)."""

    def list(self, namespace: str, *, timeout: float) -> list[Obj]:
        return []

    def read(self, namespace: str, name: str, *, timeout: float) -> Obj:
        raise ApiException(status=404)

    def replace_status(self, quota: Obj, *, timeout: float) -> Obj:
        raise AssertionError("nothing to charge")


def test_charges_in_a_thousand_namespaces_leave_no_queue_behind() -> None:
    made = QuotaCharger(NoQuotas(), lambda namespace: [])
    for n in range(1000):
        assert made.charge(f"ns-{n}").decision.allowed
    assert len(made) == 0


def test_a_failed_charge_leaves_no_queue_behind() -> None:
    api = FakeQuotas(quota("q", 5, used=0))
    api.fail_writes["q"] = 500
    made = QuotaCharger(api, lambda namespace: api.snapshot())
    with pytest.raises(ApiException):
        made.charge(NS)
    assert len(made) == 0


def test_concurrent_charges_keep_their_namespace_queue_and_then_drop_it() -> None:
    """The race above: exact admission, no conflict in one replica, no queue left after."""
    api = FakeQuotas(quota("q", ROOM, used=0))
    made = QuotaCharger(api, lambda namespace: api.snapshot())
    admitted, denied, errors = _race([made], threads_each=20)
    assert errors == [] and api.conflicts == 0
    assert (admitted, denied) == (ROOM, 20 - ROOM)
    assert len(made) == 0


# --- charging against the quota our own last write returned ---------------------------------


def test_sequential_charges_on_a_lagging_cache_write_once_each() -> None:
    """The watch cache lags our own writes: charging against what our last write returned
    costs one write per create, as kube-apiserver's quota admission does."""
    api = FakeQuotas(quota("q", 100, used=0))
    made = charger(api, frozen(api.snapshot()))  # the cache never sees our writes
    for _ in range(10):
        assert made.charge(NS).decision.allowed
    assert api.conflicts == 0 and api.lists == 0
    assert [used for _, used in api.writes] == [str(n) for n in range(1, 11)]


def test_a_judge_sees_our_own_charge_before_the_cache_does() -> None:
    api = FakeQuotas(quota("q", 5, used=4))
    made = charger(api, frozen(api.snapshot()))
    assert made.charge(NS).decision.allowed
    lists = api.lists
    assert made.judge(NS).decision.message == quota_exceeded_message("q", 1, 5, 5)
    assert api.lists == lists + 1, "a denial is still confirmed live"


def test_another_replicas_write_seen_by_the_cache_wins_over_our_older_one() -> None:
    api = FakeQuotas(quota("q", 100, used=0))
    cache: list[Obj] = api.snapshot()
    made = charger(api, lambda namespace: copy.deepcopy(cache))
    assert made.charge(NS).decision.allowed
    api.set_used("q", 7)  # another replica charged; this time our cache has seen it
    cache = api.snapshot()
    assert made.charge(NS).decision.allowed
    assert api.conflicts == 0
    assert api.used("q") == "8"


def test_a_remembered_quota_another_replica_wrote_since_costs_one_conflict_not_a_charge() -> None:
    api = FakeQuotas(quota("q", 100, used=0))
    made = charger(api, frozen(api.snapshot()))
    assert made.charge(NS).decision.allowed
    api.set_used("q", 7)  # another replica charged; neither our memory nor cache saw it
    assert made.charge(NS).decision.allowed
    assert api.conflicts == 1
    assert api.used("q") == "8", "the charge must build on the live value"
    assert made.charge(NS).decision.allowed, "after the live read, our write is newest again"
    assert api.conflicts == 1
    assert api.used("q") == "9"


def test_two_replicas_with_lagging_caches_taking_turns_admit_exactly_the_room() -> None:
    api = FakeQuotas(quota("q", ROOM, used=0))
    stale = frozen(api.snapshot())
    replicas = [charger(api, stale), charger(api, stale)]
    admitted = sum(replicas[i % 2].charge(NS).decision.allowed for i in range(3 * ROOM))
    assert admitted == ROOM
    assert api.used("q") == str(ROOM)


def test_a_recreated_quota_is_charged_from_the_cache_not_from_the_old_object() -> None:
    api = FakeQuotas(quota("q", 100, used=0))
    cache: list[Obj] = api.snapshot()
    made = charger(api, lambda namespace: copy.deepcopy(cache))
    assert made.charge(NS).decision.allowed  # remembers q at used 1, uid-q
    api.recreate("q", used=0)
    cache = api.snapshot()
    assert made.charge(NS).decision.allowed
    assert api.conflicts == 0
    assert api.used("q") == "1"


def test_a_deleted_quota_is_forgotten_and_no_longer_charged() -> None:
    api = FakeQuotas(quota("q", 100, used=0), quota("other", 100, used=0))
    cache: list[Obj] = api.snapshot()
    written = WrittenQuotas()
    made = QuotaCharger(api, lambda namespace: copy.deepcopy(cache), written=written)
    assert made.charge(NS).decision.allowed
    assert len(written) == 2
    api.delete("q")
    cache = api.snapshot()
    assert made.charge(NS).decision.allowed
    assert len(written) == 1
    assert api.writes[-1] == ("other", "2")


def test_a_failed_precondition_forgets_the_remembered_quota() -> None:
    written = WrittenQuotas()
    api = AlwaysConflicting(quota("q", 5, used=0))
    written.remember(NS, api.snapshot()[0])
    with pytest.raises(ChargeConflict):
        QuotaCharger(api, lambda ns: api.snapshot(), attempts=1, written=written).charge(NS)
    assert len(written) == 0


def test_the_remembered_quotas_are_bounded_least_recently_used_first() -> None:
    written = WrittenQuotas(size=3)
    for n in range(4):
        written.remember(f"ns-{n}", {"metadata": {"name": "q", "uid": "u", "resourceVersion": "9"}})
    assert len(written) == 3
    old = {"metadata": {"name": "q", "uid": "u", "resourceVersion": "1"}}
    assert written.fresher("ns-0", [old]) == [old], "the oldest entry was dropped"
    assert written.fresher("ns-1", [old])[0]["metadata"]["resourceVersion"] == "9"


# --- charges queued in one replica share a write ----------------------------------------------


class HeldFirstWrite(FakeQuotas):
    """The first status write waits until released: charges queue behind it meanwhile."""

    def __init__(self, *quotas: Obj) -> None:
        super().__init__(*quotas)
        self.writing, self.release = threading.Event(), threading.Event()

    def replace_status(self, body: Obj, *, timeout: float) -> Obj:
        if not self.writing.is_set():
            self.writing.set()
            assert self.release.wait(DEADLINE)
        return super().replace_status(body, timeout=timeout)


def _queue_behind_first(
    made: QuotaCharger, api: HeldFirstWrite, asks: list[tuple[int, str]]
) -> list[bool | BaseException]:
    """One charge that holds its write, ``asks`` queued behind it (each waits until queued),
    then the write released; each one's verdict (or error), the first's first."""
    results: list[bool | BaseException] = [False] * (len(asks) + 1)

    def run(i: int, requested: int, resource: str) -> None:
        try:
            results[i] = made.charge(NS, requested, resource).decision.allowed
        except BaseException as err:
            results[i] = err

    first = threading.Thread(target=run, args=(0, 1, R))
    first.start()
    assert api.writing.wait(DEADLINE)
    threads = [threading.Thread(target=run, args=(i, *ask)) for i, ask in enumerate(asks, 1)]
    for thread in threads:
        thread.start()
    wait_until(lambda: made.queued(NS) == len(asks))
    api.release.set()
    for thread in [first, *threads]:
        thread.join(DEADLINE)
        assert not thread.is_alive(), "a charge hung"
    return results


def wait_until(condition: Callable[[], bool]) -> None:
    end = threading.Event()
    timer = threading.Timer(DEADLINE, end.set)
    timer.start()
    try:
        while not condition():
            assert not end.wait(0.001), "condition not met in time"
    finally:
        timer.cancel()


def test_charges_queued_behind_a_write_share_the_next_write() -> None:
    api = HeldFirstWrite(quota("q", 10, used=0))
    made = charger(api)
    results = _queue_behind_first(made, api, [(1, R)] * 5)
    assert results == [True] * 6
    assert api.writes == [("q", "1"), ("q", "6")], "one write for the five queued charges"
    assert api.conflicts == 0 and len(made) == 0


def test_a_batch_admits_exactly_the_room_and_denies_the_rest_with_their_own_message() -> None:
    api = HeldFirstWrite(quota("q", 4, used=0))
    made = charger(api)
    results = _queue_behind_first(made, api, [(1, R)] * 5)
    assert results == [True, True, True, True, False, False]
    assert api.used("q") == "4"
    assert len(api.writes) == 2


def test_one_waiters_denial_does_not_deny_the_others_in_its_batch() -> None:
    storage = quota("q", 10, used=0)
    storage["spec"]["hard"]["alauda.io/image-storage"] = "1Mi"
    storage["status"]["used"]["alauda.io/image-storage"] = "0"
    api = HeldFirstWrite(storage)
    made = charger(api)
    big, small = (2 * 1024 * 1024, "alauda.io/image-storage"), (1024, "alauda.io/image-storage")
    results = _queue_behind_first(made, api, [big, small, (1, R)])
    assert results == [True, False, True, True]
    assert api.snapshot()[0]["status"]["used"]["alauda.io/image-storage"] == "1Ki"
    assert api.used("q") == "2"


class FailsBatches(HeldFirstWrite):
    """Refuses a write that adds more than one ImageStream (as a webhook or a validation
    could refuse what a batch writes): each charge alone still passes."""

    def replace_status(self, body: Obj, *, timeout: float) -> Obj:
        name = body["metadata"]["name"]
        if int(body["status"]["used"][R]) - int(self.used(name) or 0) > 1:
            raise ApiException(status=422)
        return super().replace_status(body, timeout=timeout)


def test_a_batch_whose_write_fails_charges_each_waiter_alone() -> None:
    api = FailsBatches(quota("q", 10, used=0))
    made = charger(api)
    results = _queue_behind_first(made, api, [(1, R)] * 3)
    assert results == [True] * 4
    assert api.used("q") == "4"


def test_a_batch_that_keeps_conflicting_answers_every_waiter_retryably() -> None:
    api = AlwaysConflicting(quota("q", 5, used=0))
    made = charger(api, attempts=2)
    admitted, denied, errors = _race([made], threads_each=4)
    assert (admitted, denied) == (0, 0)
    assert len(errors) == 4 and all(isinstance(err, ChargeConflict) for err in errors)
    assert len(made) == 0


class RacedFirstWrite(HeldFirstWrite):
    """The first write is held, then another process writes the quota first (409)."""

    def replace_status(self, body: Obj, *, timeout: float) -> Obj:
        if not self.writing.is_set():
            self.writing.set()
            assert self.release.wait(DEADLINE)
            self.set_used(body["metadata"]["name"], 0)
        return FakeQuotas.replace_status(self, body, timeout=timeout)


def test_a_batch_that_lost_a_race_takes_the_charges_queued_meanwhile_into_its_retry() -> None:
    api = RacedFirstWrite(quota("q", 10, used=0))
    made = charger(api)
    results = _queue_behind_first(made, api, [(1, R)] * 5)
    assert results == [True] * 6
    assert api.conflicts == 1
    assert api.writes == [("q", "6")], "the retry writes all six at once"
    assert len(made) == 0


class SlowAloneAfterFailedBatch(FailsBatches):
    """A batch write fails (422); charged alone, the second waiter's write (the quota from 2
    to 3) takes all the time it is given, then times out."""

    def __init__(self, clock: StepClock, *quotas: Obj) -> None:
        super().__init__(*quotas)
        self.clock = clock

    def replace_status(self, body: Obj, *, timeout: float) -> Obj:
        if body["status"]["used"][R] == "3" and self.used(body["metadata"]["name"]) == "2":
            self.timeouts.append(timeout)
            self.clock.now += timeout
            raise ApiException(status=504)
        return super().replace_status(body, timeout=timeout)


def test_a_failed_batch_charged_alone_ends_by_the_earliest_deadline_in_it() -> None:
    """The fallback charges waiter by waiter in the thread of the waiter that leads (the
    earliest): a later waiter's slow call must not hold that answer past its deadline,
    when the API server has given up on the create it charged."""
    clock = StepClock()
    api = SlowAloneAfterFailedBatch(clock, quota("q", 10, used=0))
    made = QuotaCharger(api, lambda ns: api.snapshot(), deadline_seconds=4.0, clock=clock)
    results: dict[str, bool | BaseException] = {}
    answered_at: dict[str, float] = {}

    def run(name: str) -> None:
        try:
            results[name] = made.charge(NS).decision.allowed
        except BaseException as err:
            results[name] = err
        answered_at[name] = clock()

    first = threading.Thread(target=run, args=("first",))
    first.start()
    assert api.writing.wait(DEADLINE)
    clock.now = 100.5  # the early waiter's deadline: 104.5
    early = threading.Thread(target=run, args=("early",))
    early.start()
    wait_until(lambda: made.queued(NS) == 1)
    clock.now = 103.0  # the late waiter's deadline: 107
    late = threading.Thread(target=run, args=("late",))
    late.start()
    wait_until(lambda: made.queued(NS) == 2)
    clock.now = 103.5
    api.release.set()
    for thread in (first, early, late):
        thread.join(DEADLINE)
    assert results["first"] is True and results["early"] is True
    assert isinstance(results["late"], (ApiException, ChargeConflict))
    assert answered_at["early"] <= 104.5, "the charged leader answered after its deadline"
    assert api.used("q") == "2"


# --- one waiter's deadline is its own -------------------------------------------------------


class DeadlineInSecondBatch(HeldFirstWrite):
    """Two quotas; the first charge's write is held. In the next batch (two waiters), the
    write of q1 lands, then the first waiter's deadline passes: before the write of q2
    (``between``), or while it is on the wire, which then times out (``wire``)."""

    def __init__(self, clock: StepClock, first_end: float, when: str, *quotas: Obj) -> None:
        super().__init__(*quotas)
        self.clock, self.first_end, self.when = clock, first_end, when

    def replace_status(self, body: Obj, *, timeout: float) -> Obj:
        name, used = body["metadata"]["name"], body["status"]["used"][R]
        if name == "q1" and used == "3" and self.when == "between":
            written = super().replace_status(body, timeout=timeout)
            self.clock.now = self.first_end
            return written
        if name == "q2" and used == "3" and self.when == "wire":
            self.timeouts.append(timeout)
            self.clock.now += timeout  # the call's whole time: the first waiter's left
            raise ReadTimeoutError(None, "/status", "Read timed out.")  # type: ignore[arg-type]
        return super().replace_status(body, timeout=timeout)


@pytest.mark.parametrize("when", ["between", "wire"])
def test_a_waiter_reaching_its_deadline_mid_batch_leaves_alone_and_the_rest_is_charged(
    when: str,
) -> None:
    """Its deadline bounds the batch's calls; when it passes, part of an all-or-none write
    has landed: that is taken back (in time of its own), the waiter is refused retryably,
    and the others, still in time, are charged without it."""
    clock = StepClock()
    api = DeadlineInSecondBatch(clock, 104.5, when, quota("q1", 10, 0), quota("q2", 10, 0))
    made = QuotaCharger(api, lambda ns: api.snapshot(), deadline_seconds=4.0, clock=clock)
    results: dict[str, bool | BaseException] = {}

    def run(name: str) -> None:
        try:
            results[name] = made.charge(NS).decision.allowed
        except BaseException as err:
            results[name] = err

    first = threading.Thread(target=run, args=("first",))
    first.start()
    assert api.writing.wait(DEADLINE)
    clock.now = 100.5  # the near waiter's deadline: 104.5
    near = threading.Thread(target=run, args=("near",))
    near.start()
    wait_until(lambda: made.queued(NS) == 1)
    clock.now = 103.0  # the far waiter's deadline: 107
    far = threading.Thread(target=run, args=("far",))
    far.start()
    wait_until(lambda: made.queued(NS) == 2)
    clock.now = 103.5
    api.release.set()
    for thread in (first, near, far):
        thread.join(DEADLINE)
    assert results["first"] is True
    assert isinstance(results["near"], ChargeConflict)
    assert results["far"] is True, "one waiter's deadline refused the others"
    assert (api.used("q1"), api.used("q2")) == ("2", "2"), "a partial charge was left behind"


def test_a_write_that_times_out_on_the_wire_takes_back_the_quotas_already_written() -> None:
    class SlowSecondQuota(FakeQuotas):
        def replace_status(self, body: Obj, *, timeout: float) -> Obj:
            if body["metadata"]["name"] == "q2":
                raise ReadTimeoutError(None, "/status", "Read timed out.")  # type: ignore[arg-type]
            return super().replace_status(body, timeout=timeout)

    api = SlowSecondQuota(quota("q1", 10, 0), quota("q2", 10, 0))
    with pytest.raises(ReadTimeoutError):
        charger(api).charge(NS)
    assert api.used("q1") == "0", "the charge on q1 must be taken back"
    assert api.writes == [("q1", "1"), ("q1", "0")]


def test_a_partial_charge_that_cannot_be_taken_back_is_not_charged_again_on_top() -> None:
    """q2's write loses a race; taking back q1's charge fails (500). Deciding again on the
    live quotas, which still hold it, would charge the same create twice on q1."""

    class ReleaseFails(FakeQuotas):
        def read(self, namespace: str, name: str, *, timeout: float) -> Obj:
            raise ApiException(status=500)

    api = ReleaseFails(quota("q1", 10, 0), quota("q2", 10, 0))
    cache = frozen(api.snapshot())
    api.set_used("q2", 1)  # another replica charged q2; our cache has not seen it
    with pytest.raises(ChargeConflict, match="partial charge on quota q1 could not be taken"):
        charger(api, cache).charge(NS)
    assert api.used("q1") == "1", "left for the usage reconciler, not charged twice"
    assert api.writes == [("q1", "1")]


def test_a_quota_deleted_before_its_partial_charge_is_taken_back_needs_no_release() -> None:
    class DeletesFirstQuota(FakeQuotas):
        def replace_status(self, body: Obj, *, timeout: float) -> Obj:
            if body["metadata"]["name"] == "q2" and "q1" in self.store:
                self.delete("q1")  # while our write of q2 is on its way (and loses a race)
            return super().replace_status(body, timeout=timeout)

    api = DeletesFirstQuota(quota("q1", 10, 0), quota("q2", 10, 0))
    cache = frozen(api.snapshot())
    api.set_used("q2", 1)
    assert charger(api, cache).charge(NS).decision.allowed
    assert api.used("q2") == "2"
