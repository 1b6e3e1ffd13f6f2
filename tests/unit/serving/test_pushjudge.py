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

NS = "team-a"
DIGEST = "sha256:" + "d" * 64
QUOTA_FULL = quota_exceeded_message("q", 1, 5, 5)


class FakeReads:
    def __init__(self, streams: dict[str, Obj] | None = None, tags_max: int | None = None):
        self.streams = streams or {}
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


class FakeQuota:
    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        self.asked: list[str] = []

    def judge(self, namespace: str) -> ChargePlan:
        self.asked.append(namespace)
        return ChargePlan(self.decision)


def push(repository: str = "app", tag: str | None = "v1") -> Push:
    manifest = Manifest(Descriptor("sha256:" + "c" * 64, 10), (Descriptor("sha256:1", 100),))
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
