"""PushJudge: gathers from fake caches, decides with the limit rules, asks quota for room."""

from __future__ import annotations

from decimal import Decimal

import pytest

from quota.decision import Cause, Decision
from quota.measure import Descriptor, Manifest, StreamUsage, stream_usage
from quota.objects import Obj
from quota.push import Push
from quota.resourcequota import ChargePlan, quota_exceeded_message
from serving.pushjudge import PushJudge
from serving.quotacharge import ChargeConflict

NS = "team-a"
R = "alauda.io/imagestreams"
S = "alauda.io/image-storage"
DIGEST = "sha256:" + "d" * 64
QUOTA_FULL = quota_exceeded_message("q", 1, 5, 5)


class FakeReads:
    def __init__(self, streams: dict[str, Obj] | None = None, tags_max: int | None = None):
        self.streams = streams or {}
        self.held: dict[str, int] = {}
        self.limit_ranges: list[Obj] = []
        if tags_max is not None:
            self.limit_ranges.append(
                {
                    "metadata": {"name": "lr", "namespace": NS},
                    "spec": {
                        "limits": [
                            {
                                "type": "alauda.io/ImageStream",
                                "max": {"alauda.io/image-tags": str(tags_max)},
                            }
                        ]
                    },
                }
            )

    def imagestream_usage(self, namespace: str, name: str) -> StreamUsage | None:
        assert namespace == NS
        stream = self.streams.get(name)
        return None if stream is None else stream_usage(stream)

    def limit_ranges_in(self, namespace: str) -> list[Obj]:
        assert namespace == NS
        return self.limit_ranges

    def namespace_blobs(self, namespace: str) -> dict[str, int]:
        assert namespace == NS
        return self.held


class FakeQuota:
    """``decision`` for the ImageStream quota (``asked``: the namespaces judged), and
    ``storage`` for alauda.io/image-storage (``bytes_judged``, ``bytes_charged``: the
    requests)."""

    def __init__(self, decision: Decision, storage: Decision | None = None) -> None:
        self.decision = decision
        self.storage = storage or Decision.allow()
        self.asked: list[str] = []
        self.bytes_judged: list[int] = []
        self.bytes_charged: list[int] = []
        self.conflict = False

    def judge(self, namespace: str, requested: int = 1, resource: str = R) -> ChargePlan:
        if resource == S:
            self.bytes_judged.append(requested)
            return ChargePlan(self.storage)
        self.asked.append(namespace)
        return ChargePlan(self.decision)

    def charge(self, namespace: str, requested: int = 1, resource: str = R) -> ChargePlan:
        assert resource == S, "a push charges only storage; the stream's create is charged"
        if self.conflict:
            raise ChargeConflict(f"could not charge quota in {namespace}: too many writes")
        self.bytes_charged.append(requested)
        return ChargePlan(self.storage)


CONFIG = "sha256:" + "c" * 64


def push(repository: str = "app", tag: str | None = "v1") -> Push:
    manifest = Manifest(Descriptor(CONFIG, 10), (Descriptor("sha256:1", 100),))
    return Push(NS, repository, tag, DIGEST, "", manifest)


def existing(*tags: str) -> Obj:
    return {
        "metadata": {"name": "app", "namespace": NS},
        "spec": {"tags": [{"name": tag} for tag in tags]},
    }


def test_a_new_repository_needs_room_in_the_quota() -> None:
    quota = FakeQuota(Decision.deny(QUOTA_FULL, Cause.QUOTA_EXCEEDED))
    decision = PushJudge(FakeReads(), quota).judge(push())
    assert decision == Decision.deny(QUOTA_FULL, Cause.QUOTA_EXCEEDED)
    assert quota.asked == [NS]


def test_a_new_repository_with_room_is_allowed() -> None:
    quota = FakeQuota(Decision.allow())
    assert PushJudge(FakeReads(), quota).judge(push()).allowed
    assert quota.asked == [NS]


def test_an_existing_repository_never_asks_the_quota() -> None:
    quota = FakeQuota(Decision.deny(QUOTA_FULL, Cause.QUOTA_EXCEEDED))
    decision = PushJudge(FakeReads({"app": existing("v1")}), quota).judge(push(tag="v2"))
    assert decision.allowed
    assert quota.asked == []


@pytest.mark.parametrize(
    ("streams", "tags_max"), [({}, 0), ({"app": existing("v1", "v2")}, 2)], ids=["new", "existing"]
)
def test_a_limit_denial_comes_first_and_skips_the_quota(
    streams: dict[str, Obj], tags_max: int
) -> None:
    quota = FakeQuota(Decision.deny(QUOTA_FULL, Cause.QUOTA_EXCEEDED))
    decision = PushJudge(FakeReads(streams, tags_max=tags_max), quota).judge(push(tag="v3"))
    assert not decision.allowed
    assert decision.message.startswith('ImageStream "app" is forbidden: ')
    assert "exceeds the maximum limit" in decision.message
    assert (decision.code, decision.reason) == (403, "Forbidden")
    assert decision.cause is Cause.IMAGE_TAGS_LIMIT and not decision.retryable
    assert quota.asked == []


def test_the_pushed_digest_counts_against_the_images_limit() -> None:
    stream = {
        "metadata": {"name": "app", "namespace": NS},
        "status": {"tags": [{"tag": "v1", "items": [{"image": "sha256:" + "1" * 64}]}]},
    }
    reads = FakeReads({"app": stream})
    reads.limit_ranges = [
        {
            "metadata": {"name": "lr", "namespace": NS},
            "spec": {
                "limits": [{"type": "alauda.io/ImageStream", "max": {"alauda.io/images": "1"}}]
            },
        }
    ]
    decision = PushJudge(reads, FakeQuota(Decision.allow())).judge(push(tag="v1"))
    assert not decision.allowed
    assert "alauda.io/images" in decision.message and "(2 > 1)" in decision.message


def test_an_upload_into_a_new_repository_needs_room_in_the_quota() -> None:
    quota = FakeQuota(Decision.deny(QUOTA_FULL, Cause.QUOTA_EXCEEDED))
    assert PushJudge(FakeReads(), quota).upload_room(NS, "app") == Decision.deny(
        QUOTA_FULL, Cause.QUOTA_EXCEEDED
    )
    assert quota.asked == [NS]
    room = FakeQuota(Decision.allow())
    assert PushJudge(FakeReads(), room).upload_room(NS, "app").allowed


def test_an_upload_into_an_existing_repository_never_asks_the_quota() -> None:
    quota = FakeQuota(Decision.deny(QUOTA_FULL, Cause.QUOTA_EXCEEDED))
    assert PushJudge(FakeReads({"app": existing("v1")}), quota).upload_room(NS, "app").allowed
    assert quota.asked == []


def image_limits(*maxima: tuple[str, str]) -> list[Obj]:
    return [
        {
            "metadata": {"name": name, "namespace": NS},
            "spec": {"limits": [{"type": "alauda.io/Image", "max": {"storage": size}}]},
        }
        for name, size in maxima
    ]


def test_the_largest_image_is_the_smallest_image_storage_max() -> None:
    reads = FakeReads(tags_max=1)  # an ImageStream limit: no image size
    judge = PushJudge(reads, FakeQuota(Decision.allow()))
    assert judge.largest_image(NS) is None
    reads.limit_ranges += image_limits(("big", "2Mi"), ("small", "1Mi"))
    limit = judge.largest_image(NS)
    assert limit is not None and (limit.maximum, limit.limit_range) == (Decimal(2**20), "small")


STORAGE_FULL = (
    "exceeded quota: space, requested: alauda.io/image-storage=110, "
    "used: alauda.io/image-storage=1Mi, limited: alauda.io/image-storage=1Mi"
)


@pytest.mark.parametrize("streams", [{}, {"app": existing("v1")}], ids=["new", "existing"])
def test_a_push_needs_room_in_the_storage_quota_for_its_new_bytes(streams: dict[str, Obj]) -> None:
    quota = FakeQuota(Decision.allow(), Decision.deny(STORAGE_FULL, Cause.QUOTA_EXCEEDED))
    decision = PushJudge(FakeReads(streams), quota).judge(push(tag="v2"))
    assert decision == Decision.deny(STORAGE_FULL, Cause.QUOTA_EXCEEDED)
    assert quota.bytes_judged == [110]
    assert quota.bytes_charged == [], "judging writes nothing"


def test_blobs_the_namespace_holds_are_not_asked_for_again() -> None:
    reads = FakeReads({"app": existing("v1")})
    reads.held = {CONFIG: 10}
    quota = FakeQuota(Decision.allow())
    judge = PushJudge(reads, quota)
    assert judge.judge(push()).allowed
    assert quota.bytes_judged == [100]
    reads.held["sha256:1"] = 100
    assert judge.new_bytes(push()) == 0


def test_a_full_imagestreams_quota_is_the_denial_before_storage() -> None:
    quota = FakeQuota(
        Decision.deny(QUOTA_FULL, Cause.QUOTA_EXCEEDED),
        Decision.deny(STORAGE_FULL, Cause.QUOTA_EXCEEDED),
    )
    assert PushJudge(FakeReads(), quota).judge(push()).message == QUOTA_FULL
    assert quota.bytes_judged == []


def test_charge_storage_charges_the_new_bytes_and_passes_the_verdict_on() -> None:
    reads = FakeReads()
    reads.held = {CONFIG: 10}
    quota = FakeQuota(Decision.allow(), Decision.deny(STORAGE_FULL, Cause.QUOTA_EXCEEDED))
    assert PushJudge(reads, quota).charge_storage(push()) == Decision.deny(
        STORAGE_FULL, Cause.QUOTA_EXCEEDED
    )
    assert quota.bytes_charged == [100]


def test_a_storage_charge_that_cannot_be_written_is_denied_retryably() -> None:
    quota = FakeQuota(Decision.allow())
    quota.conflict = True
    decision = PushJudge(FakeReads(), quota).charge_storage(push())
    assert decision.cause is Cause.CHARGE_CONFLICT and decision.retryable
