"""QuotaUsageReconciler with fake caches, a fake clock and a recording CoreV1Api."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from controller.quotausage.reconciler import QuotaUsageReconciler
from kube.requeue import Requeue
from quota.objects import Obj

NS = "team-a"
R = "alauda.io/imagestreams"
GRACE = 5.0


class FakeCache:
    def __init__(self, items: list[Obj]) -> None:
        self.items = items
        self.resets = 0  # bump it where the real informer would: objects gone, no delete
        self.empty_on_next_list = False

    def reset_empty(self) -> None:
        """What the informer does on a 404 for an optional kind."""
        self.items = []
        self.resets += 1

    def list(self, namespace: str | None = None) -> list[Obj]:
        if self.empty_on_next_list:  # the 404 lands just as the recount reads the cache
            self.empty_on_next_list = False
            self.reset_empty()
        return [
            copy.deepcopy(item)
            for item in self.items
            if namespace is None or item["metadata"]["namespace"] == namespace
        ]


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


class RecordingWriter:
    def __init__(self) -> None:
        self.writes: list[tuple[str, str, Obj]] = []
        self.fail_with: int | None = None

    def replace_status(self, body: Obj) -> None:
        if self.fail_with is not None:
            raise ApiException(status=self.fail_with)
        meta = body["metadata"]
        self.writes.append((meta["name"], meta["namespace"], copy.deepcopy(body)))

    def written_used(self) -> list[str]:
        return [body["status"]["used"][R] for _, _, body in self.writes]


def quota(
    name: str = "q",
    used: str | None = "0",
    rv: str = "1",
    hard: str = "10",
    **spec: Any,
) -> Obj:
    obj: Obj = {
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "resourceVersion": rv},
        "spec": {"hard": {R: hard, "pods": "10"}, **spec},
        "status": {"hard": {R: hard}, "used": {"pods": "4"}},
    }
    if used is not None:
        obj["status"]["used"][R] = used
    return obj


def streams(count: int) -> list[Obj]:
    return [{"metadata": {"name": f"s{i}", "namespace": NS}} for i in range(count)]


class Rig:
    def __init__(self, quotas: list[Obj], count: int) -> None:
        self.quotas = FakeCache(quotas)
        self.streams = FakeCache(streams(count))
        self.clock = Clock()
        self.writer = RecordingWriter()
        self.acquired = 0
        self.reconciler = QuotaUsageReconciler(
            self.writer,
            self.quotas,
            self.streams,
            grace_seconds=GRACE,
            now=self.clock,
            acquire=self._acquire,
        )

    def _acquire(self) -> None:
        self.acquired += 1

    def set_count(self, count: int) -> None:
        self.streams.items = streams(count)

    def reconcile(self) -> float | None:
        return self.reconciler.reconcile(NS)


def test_usage_below_the_count_is_raised_at_once() -> None:
    rig = Rig([quota(used="1")], count=3)
    assert rig.reconcile() is None
    assert rig.writer.written_used() == ["3"]
    assert rig.acquired == 1
    name, namespace, body = rig.writer.writes[0]
    assert (name, namespace) == ("q", NS)
    assert body["metadata"]["resourceVersion"] == "1", "the write carries the precondition"


def test_a_missing_entry_is_written_at_once_even_when_zero() -> None:
    rig = Rig([quota(used=None)], count=0)
    assert rig.reconcile() is None
    assert rig.writer.written_used() == ["0"]


@pytest.mark.parametrize("used", ["5", "5000m"])
def test_equal_usage_is_not_rewritten(used: str) -> None:
    rig = Rig([quota(used=used)], count=5)
    assert rig.reconcile() is None
    assert rig.writer.writes == []
    assert rig.acquired == 0


def test_other_used_entries_and_the_spec_are_kept_in_the_written_body() -> None:
    original = quota(used="1")
    rig = Rig([original], count=2)
    rig.reconcile()
    body = rig.writer.writes[0][2]
    assert body["status"]["used"] == {"pods": "4", R: "2"}
    assert body["status"]["hard"] == original["status"]["hard"]
    assert body["spec"] == original["spec"]
    assert body["metadata"] == original["metadata"]


def test_lowering_waits_for_the_grace_period_then_writes() -> None:
    rig = Rig([quota(used="5")], count=3)
    assert rig.reconcile() == pytest.approx(GRACE)
    rig.clock.advance(2)
    assert rig.reconcile() == pytest.approx(GRACE - 2)
    rig.clock.advance(2.5)
    assert rig.reconcile() == pytest.approx(0.5)
    assert rig.writer.writes == []
    assert rig.acquired == 0
    rig.clock.advance(0.5)
    assert rig.reconcile() is None
    assert rig.writer.written_used() == ["3"]


def test_another_writer_does_not_restart_the_grace_timer() -> None:
    """Kubernetes' own quota admission rewrites a quota that also limits pods on every pod
    create: the release must not wait for the pods to stop."""
    rig = Rig([quota(used="5", rv="1")], count=3)
    assert rig.reconcile() == pytest.approx(GRACE)
    for rv in ("2", "3", "4", "5"):
        rig.clock.advance(1)
        rig.quotas.items = [quota(used="5", rv=rv)]  # pods: "4" -> ... (not our entry)
        rig.reconcile()
    rig.clock.advance(1)
    assert rig.reconcile() is None
    assert rig.writer.written_used() == ["3"]
    assert rig.writer.writes[0][2]["metadata"]["resourceVersion"] == "5"


def test_a_charge_landing_restarts_the_grace_timer() -> None:
    rig = Rig([quota(used="5", rv="1")], count=3)
    assert rig.reconcile() == pytest.approx(GRACE)
    rig.clock.advance(4)
    rig.quotas.items = [quota(used="6", rv="2")]  # a new create was admitted and charged
    assert rig.reconcile() == pytest.approx(GRACE)
    rig.clock.advance(4)
    assert rig.reconcile() == pytest.approx(1)
    assert rig.writer.writes == []
    rig.clock.advance(1)
    assert rig.reconcile() is None
    assert rig.writer.written_used() == ["3"]


def test_a_changed_count_restarts_the_grace_timer() -> None:
    rig = Rig([quota(used="5")], count=3)
    rig.reconcile()
    rig.clock.advance(4)
    rig.set_count(4)  # one admitted create landed; others may still be on their way
    assert rig.reconcile() == pytest.approx(GRACE)
    assert rig.writer.writes == []


def test_the_gap_is_forgotten_once_usage_matches_again() -> None:
    rig = Rig([quota(used="5")], count=3)
    assert rig.reconcile() == pytest.approx(GRACE)
    rig.clock.advance(4)
    rig.set_count(5)  # the in-flight creates landed
    assert rig.reconcile() is None
    rig.quotas.items = [quota(used="6", rv="2")]  # another create charged, not stored yet
    rig.clock.advance(4)
    assert rig.reconcile() == pytest.approx(GRACE), "a new gap waits the full grace again"
    assert rig.writer.writes == []


def test_after_a_lowering_write_a_new_gap_starts_fresh() -> None:
    rig = Rig([quota(used="5")], count=3)
    rig.reconcile()
    rig.clock.advance(GRACE)
    assert rig.reconcile() is None
    rig.quotas.items = [quota(used="4", rv="2")]  # a new charge, not stored yet
    assert rig.reconcile() == pytest.approx(GRACE)
    assert rig.writer.written_used() == ["3"]


@pytest.mark.parametrize(
    "untouched",
    [
        quota("scoped", used="9", scopes=["Terminating"]),
        quota(
            "selected",
            used="9",
            scopeSelector={
                "matchExpressions": [{"scopeName": "PriorityClass", "operator": "Exists"}]
            },
        ),
        {
            "metadata": {"name": "pods-only", "namespace": NS, "uid": "u", "resourceVersion": "1"},
            "spec": {"hard": {"pods": "10"}},
            "status": {"used": {"pods": "1"}},
        },
    ],
)
def test_scoped_quotas_and_quotas_without_the_resource_are_untouched(untouched: Obj) -> None:
    rig = Rig([untouched], count=0)
    assert rig.reconcile() is None
    rig.clock.advance(GRACE * 10)
    assert rig.reconcile() is None
    assert rig.writer.writes == []


def test_only_matching_quotas_are_written_next_to_untouched_ones() -> None:
    rig = Rig([quota("scoped", used="0", scopes=["Terminating"]), quota("q", used="0")], 2)
    rig.reconcile()
    assert [name for name, _, _ in rig.writer.writes] == ["q"]


def test_the_soonest_pending_release_is_returned() -> None:
    rig = Rig([quota("a", used="5"), quota("b", used="4")], count=1)
    assert rig.reconcile() == pytest.approx(GRACE)
    rig.clock.advance(3)
    rig.quotas.items = [quota("a", used="5"), quota("b", used="4", rv="9")]
    assert rig.reconcile() == pytest.approx(2)
    assert rig.writer.writes == []


@pytest.mark.parametrize("status", [409, 404])
def test_a_conflicting_write_asks_for_a_requeue(status: int) -> None:
    rig = Rig([quota(used="0")], count=1)
    rig.writer.fail_with = status
    with pytest.raises(Requeue):
        rig.reconcile()


def test_other_api_errors_propagate() -> None:
    rig = Rig([quota(used="0")], count=1)
    rig.writer.fail_with = 500
    with pytest.raises(ApiException) as raised:
        rig.reconcile()
    assert raised.value.status == 500


# --- gaps of quotas that are gone are forgotten ------------------------------------------


def in_namespace(obj: Obj, namespace: str) -> Obj:
    moved = copy.deepcopy(obj)
    moved["metadata"]["namespace"] = namespace
    moved["metadata"]["uid"] = f"{namespace}-{moved['metadata']['uid']}"
    return moved


def test_a_deleted_quota_gap_is_forgotten() -> None:
    rig = Rig([quota("a", used="5"), quota("b", used="5")], count=1)
    assert rig.reconcile() == pytest.approx(GRACE)
    assert rig.reconciler.pending_releases() == {NS: 2}
    rig.quotas.items = [quota("a", used="5")]
    rig.reconcile()
    assert rig.reconciler.pending_releases() == {NS: 1}


def test_a_surviving_quota_keeps_its_grace_when_another_is_deleted() -> None:
    rig = Rig([quota("a", used="5"), quota("b", used="5")], count=1)
    rig.reconcile()
    rig.clock.advance(3)
    rig.quotas.items = [quota("a", used="5")]
    assert rig.reconcile() == pytest.approx(GRACE - 3)


def test_a_quota_that_stops_naming_the_resource_is_forgotten() -> None:
    rig = Rig([quota("a", used="5")], count=1)
    rig.reconcile()
    no_longer = quota("a", used="5")
    del no_longer["spec"]["hard"][R]
    rig.quotas.items = [no_longer]
    assert rig.reconcile() is None
    assert rig.reconciler.pending_releases() == {}


def test_a_deleted_namespace_leaves_no_gap_and_others_keep_theirs() -> None:
    other = "team-b"
    rig = Rig([quota("a", used="5"), in_namespace(quota("a", used="5"), other)], count=0)
    rig.reconcile()
    rig.reconciler.reconcile(other)
    assert rig.reconciler.pending_releases() == {NS: 1, other: 1}
    rig.quotas.items = [in_namespace(quota("a", used="5"), other)]  # NS and its quotas gone
    assert rig.reconcile() is None
    assert rig.reconciler.pending_releases() == {other: 1}


def test_gaps_of_a_thousand_deleted_namespaces_are_all_forgotten() -> None:
    namespaces = [f"ns-{n}" for n in range(1000)]
    rig = Rig([in_namespace(quota("q", used="3"), ns) for ns in namespaces], count=0)
    for ns in namespaces:
        rig.reconciler.reconcile(ns)
    assert rig.reconciler.pending_releases() == dict.fromkeys(namespaces, 1)
    rig.quotas.items = []
    for ns in namespaces:
        rig.reconciler.reconcile(ns)
    assert rig.reconciler.pending_releases() == {}


def test_a_namespace_without_pending_releases_is_not_tracked() -> None:
    rig = Rig([quota("a", used="0")], count=0)
    assert rig.reconcile() is None
    rig.quotas.items = []
    assert rig.reconcile() is None
    assert rig.reconciler.pending_releases() == {}

    assert rig.reconciler.remembered() == {}


# --- what a delete frees, at once --------------------------------------------------------


def test_a_deleted_stream_frees_its_charge_at_once() -> None:
    rig = Rig([quota(used="3")], count=3)
    assert rig.reconcile() is None
    rig.set_count(2)
    assert rig.reconcile() is None
    assert rig.writer.written_used() == ["2"]


def test_a_delete_keeps_a_charge_still_in_flight() -> None:
    rig = Rig([quota(used="4")], count=3)  # one create charged, not stored yet
    assert rig.reconcile() == pytest.approx(GRACE)
    rig.set_count(2)
    assert rig.reconcile() == pytest.approx(GRACE)
    assert rig.writer.written_used() == ["3"]


def test_a_fresh_reconciler_has_no_memory_and_waits_the_grace() -> None:
    """A restart, or a new leader: what the recount lost is not known, only the gap."""
    rig = Rig([quota(used="3")], count=2)
    assert rig.reconcile() == pytest.approx(GRACE)
    assert rig.writer.writes == []


def test_a_lost_write_keeps_what_the_delete_freed_for_the_next_try() -> None:
    rig = Rig([quota(used="3")], count=3)
    rig.reconcile()
    rig.set_count(2)
    rig.writer.fail_with = 409
    with pytest.raises(Requeue):
        rig.reconcile()
    rig.writer.fail_with = None
    assert rig.reconcile() is None
    assert rig.writer.written_used() == ["2"]


def test_a_cache_emptied_without_a_delete_releases_only_after_the_grace() -> None:
    """An aggregated Image API re-registering answers 404: the informer empties its cache
    and the recount falls to 0 with every stream still stored."""
    rig = Rig([quota(used="3")], count=3)
    assert rig.reconcile() is None
    rig.streams.reset_empty()
    assert rig.reconcile() == pytest.approx(GRACE)
    assert rig.writer.writes == []
    rig.set_count(3)  # the API is back and the informer relisted
    assert rig.reconcile() is None
    assert rig.writer.writes == []


def test_a_cache_emptied_while_the_recount_reads_it_releases_nothing_at_once() -> None:
    """The resets are read after the recount, so a reset that emptied what it read shows."""
    rig = Rig([quota(used="3")], count=3)
    rig.reconcile()
    rig.streams.empty_on_next_list = True
    assert rig.reconcile() == pytest.approx(GRACE)
    assert rig.writer.writes == []


def test_deletes_after_a_reset_are_released_at_once_again() -> None:
    rig = Rig([quota(used="3")], count=3)
    rig.reconcile()
    rig.streams.resets += 1  # a relist that found nothing gone
    rig.reconcile()
    rig.set_count(2)
    assert rig.reconcile() is None
    assert rig.writer.written_used() == ["2"]


def test_the_recounts_of_a_deleted_namespace_are_forgotten() -> None:
    rig = Rig([quota("a", used="0")], count=0)
    rig.reconcile()
    assert rig.reconciler.remembered() == {NS: 1}
    rig.quotas.items = []
    rig.reconcile()
    assert rig.reconciler.remembered() == {}


# --- alauda.io/image-storage -------------------------------------------------------------

S = "alauda.io/image-storage"
KI = 1024
M = {name: f"sha256:{name * 64}" for name in "abc"}
B = {name: f"sha256:{name * 64}" for name in "uvwxyz"}


def storage_quota(used: str | None = "0", rv: str = "1", hard: str = "1Mi") -> Obj:
    obj: Obj = {
        "metadata": {"name": "space", "namespace": NS, "uid": "uid-space", "resourceVersion": rv},
        "spec": {"hard": {S: hard, R: "10"}},
        "status": {"used": {R: "1"}},
    }
    if used is not None:
        obj["status"]["used"][S] = used
    return obj


def image(digest: str, *layers: tuple[str, int]) -> Obj:
    return {
        "metadata": {"name": digest.replace(":", "-")},
        "dockerImageReference": f"registry.example/{NS}/app@{digest}",
        "dockerImageLayers": [{"name": name, "size": size} for name, size in layers],
    }


def tagged(*history: str) -> Obj:
    return {
        "metadata": {"name": "app", "namespace": NS},
        "status": {"tags": [{"tag": "v1", "items": [{"image": d} for d in history]}]},
    }


class StorageRig(Rig):
    def __init__(self, used: str | None, *history: str) -> None:
        super().__init__([storage_quota(used)], 0)
        self.streams.items = [tagged(*history)]
        self.images = FakeCache(
            [
                image(M["a"], (B["u"], 300 * KI), (B["v"], 100 * KI)),
                image(M["b"], (B["u"], 300 * KI), (B["w"], 200 * KI)),
                image(M["c"], (B["u"], 300 * KI), (B["x"], 1 * KI)),
            ]
        )
        self.reconciler = QuotaUsageReconciler(
            self.writer,
            self.quotas,
            self.streams,
            self.images,
            grace_seconds=GRACE,
            now=self.clock,
            acquire=self._acquire,
        )

    def storage_written(self) -> list[str]:
        return [body["status"]["used"][S] for _, _, body in self.writer.writes]


def test_storage_counts_each_distinct_blob_of_the_namespaces_images_once() -> None:
    rig = StorageRig(None, M["b"], M["a"])
    assert rig.reconcile() is None
    assert rig.storage_written() == ["600Ki"]
    assert rig.writer.writes[0][2]["status"]["used"][R] == "1", "both entries, one write"


def test_a_tag_history_entry_removed_frees_its_storage_at_once() -> None:
    rig = StorageRig("600Ki", M["b"], M["a"])
    assert rig.reconcile() is None
    assert rig.writer.writes == []
    rig.streams.items = [tagged(M["b"])]  # M["a"]'s 100 KiB layer is no longer referenced
    assert rig.reconcile() is None
    assert rig.storage_written() == ["500Ki"]


def test_storage_charged_for_a_push_in_flight_waits_the_grace() -> None:
    rig = StorageRig("900Ki", M["b"], M["a"])  # 300 KiB charged for a push not recorded
    assert rig.reconcile() == pytest.approx(GRACE)
    rig.clock.advance(GRACE)
    assert rig.reconcile() is None
    assert rig.storage_written() == ["600Ki"]


def test_storage_freed_while_a_push_reusing_its_blobs_is_in_flight_waits_the_grace() -> None:
    """M["a"] holds a 300 KiB blob; a push of M["c"] (that blob and 1 KiB) was charged
    1 KiB because it was held. The tag is deleted before M["c"] is recorded: releasing
    M["a"]'s 400 KiB at once would write 1 KiB, and admit pushes that overrun the limit
    once M["c"] lands with its 301 KiB."""
    rig = StorageRig("400Ki", M["a"])
    assert rig.reconcile() is None
    rig.quotas.items = [storage_quota("401Ki", rv="2")]  # the push of M["c"], charged
    assert rig.reconcile() == pytest.approx(GRACE)
    rig.streams.items = [tagged()]  # the tag deleted: nothing holds M["a"] any more
    assert rig.reconcile() == pytest.approx(GRACE)
    assert rig.writer.writes == []
    rig.clock.advance(GRACE / 2)
    rig.streams.items = [tagged(M["c"])]  # the push lands: its 301 KiB stay charged
    assert rig.reconcile() == pytest.approx(GRACE)
    assert rig.writer.writes == []
    rig.clock.advance(GRACE)
    assert rig.reconcile() is None
    assert rig.storage_written() == ["301Ki"]


def test_an_emptied_image_cache_does_not_release_storage_at_once() -> None:
    rig = StorageRig("600Ki", M["b"], M["a"])
    assert rig.reconcile() is None
    rig.images.reset_empty()
    assert rig.reconcile() == pytest.approx(GRACE)
    assert rig.writer.writes == []
