"""ImageStreamValidator with fake caches and a fake charger (no cluster, no informers)."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from quota.decision import Cause, Decision
from quota.limitchecks import ImageSize, size_of
from quota.objects import Obj
from quota.resourcequota import ChargePlan, quota_exceeded_message
from serving.quotacharge import CHARGE_DEADLINE_SECONDS, ChargeConflict
from webhook.admission.endpoints import VALIDATE_IMAGESTREAMS
from webhook.admission.imagelookup import ImageLookupFailed
from webhook.admission.imagestreams import (
    IMAGE_LOOKUP_BUDGET_SECONDS,
    IMAGE_LOOKUP_TIMEOUT_SECONDS,
    MAX_IMAGE_LOOKUPS,
    NOT_READY_MESSAGE,
    ImageStreamValidator,
)
from webhook.admission.review import AdmissionRequest, GroupVersionKind
from webhook.registration import TIMEOUT_SECONDS

NS = "team-a"
MI = 1024 * 1024


class FakeCaches:
    def __init__(
        self,
        limit_ranges: list[Obj] | None = None,
        images: dict[str, Obj] | None = None,
        pending: str | None = None,
    ) -> None:
        self.limit_ranges = limit_ranges or []
        self.images = images or {}
        self.pending = pending
        self.image_lookups: list[str] = []
        self.limit_lookups: list[str] = []

    def not_ready(self) -> str | None:
        return self.pending

    def limit_ranges_in(self, namespace: str) -> list[Obj]:
        self.limit_lookups.append(namespace)
        return self.limit_ranges

    def image_size(self, digest: str) -> ImageSize:
        """Sized as the real cache sizes an Image when it stores it."""
        self.image_lookups.append(digest)
        return size_of(self.images.get(digest))


class FakeImages:
    """The live Image lookup: ``live`` answers by digest, ``failing`` digests raise, and a
    ``clock`` (when given) moves ``cost`` seconds per call (a slow API server)."""

    def __init__(
        self,
        live: dict[str, Obj] | None = None,
        failing: frozenset[str] = frozenset(),
        clock: StepClock | None = None,
        cost: float = 0.0,
    ) -> None:
        self.live = live or {}
        self.failing = failing
        self.clock = clock
        self.cost = cost
        self.lookups: list[str] = []
        self.timeouts: list[float] = []

    def image_size(self, digest: str, *, timeout: float) -> ImageSize:
        """Sized as ``ImageClient.image_size`` sizes the Image it reads."""
        self.lookups.append(digest)
        self.timeouts.append(timeout)
        if self.clock is not None:
            self.clock.now += self.cost
        if digest in self.failing:
            raise ImageLookupFailed("timed out")
        return size_of(self.live.get(digest))


class StepClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeCharger:
    def __init__(self, plan: ChargePlan | None = None, conflict: bool = False) -> None:
        self.plan = plan or ChargePlan(Decision.allow())
        self.conflict = conflict
        self.charged: list[str] = []
        self.judged: list[str] = []

    def _answer(self) -> ChargePlan:
        if self.conflict:
            raise ChargeConflict(f"could not charge quota in {NS}: too many concurrent writes")
        return self.plan

    def judge(self, namespace: str, requested: int = 1, resource: str = "") -> ChargePlan:
        self.judged.append(namespace)
        return self._answer()

    def charge(self, namespace: str, requested: int = 1, resource: str = "") -> ChargePlan:
        self.charged.append(namespace)
        return self._answer()


def validator(
    caches: FakeCaches, charger: FakeCharger, images: FakeImages | None = None
) -> ImageStreamValidator:
    lookup = FakeImages() if images is None else images
    return ImageStreamValidator(caches, charger, lookup, clock=lookup.clock or StepClock())


def stream(
    name: str = "app",
    spec_tags: tuple[str, ...] = (),
    status_tags: dict[str, tuple[str, ...]] | None = None,
) -> Obj:
    return {
        "apiVersion": "image.alauda.io/v1",
        "kind": "ImageStream",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"tags": [{"name": tag} for tag in spec_tags]},
        "status": {
            "tags": [
                {"tag": tag, "items": [{"image": digest} for digest in digests]}
                for tag, digests in (status_tags or {}).items()
            ]
        },
    }


def request(
    obj: Obj | None,
    *,
    operation: str = "CREATE",
    old: Obj | None = None,
    dry_run: bool = False,
    sub_resource: str = "",
    name: str = "app",
) -> AdmissionRequest:
    return AdmissionRequest(
        uid="uid-1",
        kind=GroupVersionKind("image.alauda.io", "v1", "ImageStream"),
        resource="imagestreams",
        sub_resource=sub_resource,
        operation=operation,
        namespace=NS,
        name=name,
        object=obj,
        old_object=old,
        dry_run=dry_run,
        username="alice",
    )


def limit_range(
    name: str = "lr",
    tags: str | None = None,
    images: str | None = None,
    storage: str | None = None,
) -> Obj:
    limits: list[Obj] = []
    stream_max = {
        key: value
        for key, value in (("alauda.io/image-tags", tags), ("alauda.io/images", images))
        if value is not None
    }
    if stream_max:
        limits.append({"type": "alauda.io/ImageStream", "max": stream_max})
    if storage is not None:
        limits.append({"type": "alauda.io/Image", "max": {"storage": storage}})
    return {"metadata": {"name": name, "namespace": NS}, "spec": {"limits": limits}}


def sized_image(size: int) -> Obj:
    return {"dockerImageMetadata": {"size": size}}


def tags_message(requested: int, maximum: int, lr: str = "lr", name: str = "app") -> str:
    return (
        f'ImageStream "{name}" is forbidden: requested usage of alauda.io/image-tags exceeds '
        f"the maximum limit per alauda.io/ImageStream ({requested} > {maximum}) "
        f'set by LimitRange "{lr}"'
    )


def images_message(requested: int, maximum: int, lr: str = "lr", name: str = "app") -> str:
    return (
        f'ImageStream "{name}" is forbidden: requested usage of alauda.io/images exceeds '
        f"the maximum limit per alauda.io/ImageStream ({requested} > {maximum}) "
        f'set by LimitRange "{lr}"'
    )


def storage_message(requested: str, maximum: str, lr: str = "lr", name: str = "app") -> str:
    return (
        f'ImageStream "{name}" is forbidden: requested usage of storage exceeds '
        f"the maximum limit per alauda.io/Image ({requested} > {maximum}) "
        f'set by LimitRange "{lr}"'
    )


def assert_forbidden(decision: Decision, message: str) -> None:
    assert decision.allowed is False
    assert decision.code == 403
    assert decision.reason == "Forbidden"
    assert decision.message == message


# --- readiness ---------------------------------------------------------------------------


@pytest.mark.parametrize("obj", [stream(), None])
@pytest.mark.parametrize("operation", ["CREATE", "UPDATE"])
def test_unsynced_caches_deny_retryably_and_never_allow(obj: Obj | None, operation: str) -> None:
    caches = FakeCaches(pending="caches not synced: images")
    charger = FakeCharger()
    decision = validator(caches, charger)(request(obj, operation=operation))
    assert decision.allowed is False
    assert decision.code == 503
    assert decision.reason == "ServiceUnavailable"
    assert decision.message == NOT_READY_MESSAGE
    assert charger.charged == [] and charger.judged == []
    assert caches.limit_lookups == []


def test_a_request_without_object_is_allowed_untouched() -> None:
    charger = FakeCharger()
    decision = validator(FakeCaches(), charger)(request(None))
    assert decision.allowed is True
    assert charger.charged == []


# --- limits ------------------------------------------------------------------------------


def test_create_over_tag_limit_is_denied_with_the_contract_message() -> None:
    caches = FakeCaches([limit_range(tags="2")])
    charger = FakeCharger()
    obj = stream(spec_tags=("a", "b"), status_tags={"c": ()})
    decision = validator(caches, charger)(request(obj))
    assert_forbidden(decision, tags_message(3, 2))
    assert "exceeds the maximum limit" in decision.message
    assert charger.charged == [], "a create denied by a limit must not charge quota"


def test_tags_in_spec_and_status_are_counted_once_each() -> None:
    caches = FakeCaches([limit_range(tags="2")])
    obj = stream(spec_tags=("a", "b"), status_tags={"a": (), "b": ()})
    assert validator(caches, FakeCharger())(request(obj)).allowed is True


def test_create_over_image_limit_is_denied_with_the_contract_message() -> None:
    caches = FakeCaches([limit_range(images="2")])
    obj = stream(status_tags={"a": ("sha256:1", "sha256:2"), "b": ("sha256:3", "sha256:1")})
    decision = validator(caches, FakeCharger())(request(obj))
    assert_forbidden(decision, images_message(3, 2))


def test_at_the_limit_is_allowed() -> None:
    caches = FakeCaches([limit_range(tags="2", images="2")])
    obj = stream(spec_tags=("a",), status_tags={"b": ("sha256:1", "sha256:2")})
    decision = validator(caches, FakeCharger())(request(obj))
    assert decision.allowed is True


def test_the_smallest_max_of_several_limit_ranges_wins_and_is_named() -> None:
    caches = FakeCaches([limit_range("big", tags="10"), limit_range("small", tags="1")])
    decision = validator(caches, FakeCharger())(request(stream(spec_tags=("a", "b"))))
    assert_forbidden(decision, tags_message(2, 1, lr="small"))


def test_tag_and_image_violations_are_all_reported() -> None:
    caches = FakeCaches([limit_range(tags="1", images="1")])
    obj = stream(status_tags={"a": ("sha256:1",), "b": ("sha256:2",)})
    decision = validator(caches, FakeCharger())(request(obj))
    assert_forbidden(decision, f"{tags_message(2, 1)}; {images_message(2, 1)}")


def test_the_name_falls_back_to_object_metadata() -> None:
    caches = FakeCaches([limit_range(tags="0")])
    decision = validator(caches, FakeCharger())(
        request(stream(name="from-meta", spec_tags=("a",)), name="")
    )
    assert_forbidden(decision, tags_message(1, 0, name="from-meta"))


@pytest.mark.parametrize(("new_tags", "allowed"), [(4, True), (5, True), (6, False)])
def test_update_of_a_stream_over_the_limit_may_shrink_or_stay_but_not_grow(
    new_tags: int, allowed: bool
) -> None:
    caches = FakeCaches([limit_range(tags="2")])
    old = stream(spec_tags=tuple(f"t{i}" for i in range(5)))
    new = stream(spec_tags=tuple(f"t{i}" for i in range(new_tags)))
    charger = FakeCharger()
    decision = validator(caches, charger)(request(new, operation="UPDATE", old=old))
    assert decision.allowed is allowed
    if not allowed:
        assert_forbidden(decision, tags_message(6, 2))
    assert charger.charged == [] and charger.judged == []


def test_update_of_images_over_the_limit_may_keep_the_count() -> None:
    caches = FakeCaches([limit_range(images="1")])
    old = stream(status_tags={"a": ("sha256:1", "sha256:2")})
    same = stream(status_tags={"a": ("sha256:2",), "b": ("sha256:1",)})
    grown = stream(status_tags={"a": ("sha256:1", "sha256:2", "sha256:3")})
    check = validator(caches, FakeCharger())
    assert check(request(same, operation="UPDATE", old=old)).allowed is True
    assert_forbidden(check(request(grown, operation="UPDATE", old=old)), images_message(3, 1))


def test_create_ignores_an_old_object_so_the_shrink_exemption_cannot_be_borrowed() -> None:
    caches = FakeCaches([limit_range(tags="2")])
    big = stream(spec_tags=("a", "b", "c"))
    bigger = stream(spec_tags=("a", "b", "c", "d"))
    decision = validator(caches, FakeCharger())(request(big, operation="CREATE", old=bigger))
    assert_forbidden(decision, tags_message(3, 2))


def test_status_subresource_update_is_judged_by_the_same_limits() -> None:
    caches = FakeCaches([limit_range(images="1")])
    old = stream(status_tags={"a": ("sha256:1",)})
    new = stream(status_tags={"a": ("sha256:1", "sha256:2")})
    charger = FakeCharger()
    decision = validator(caches, charger)(
        request(new, operation="UPDATE", old=old, sub_resource="status")
    )
    assert_forbidden(decision, images_message(2, 1))
    assert charger.charged == []


# --- image storage -----------------------------------------------------------------------


def test_a_new_image_over_the_storage_limit_is_denied() -> None:
    caches = FakeCaches([limit_range(storage="1Mi")], images={"sha256:big": sized_image(2 * MI)})
    obj = stream(status_tags={"a": ("sha256:big",)})
    decision = validator(caches, FakeCharger())(request(obj))
    assert_forbidden(decision, storage_message("2Mi", "1Mi"))


def test_storage_uses_config_plus_distinct_layers_when_listed() -> None:
    image = {
        "dockerImageConfig": {"digest": "sha256:c", "size": MI // 2},
        "dockerImageLayers": [
            {"name": "sha256:l1", "size": MI // 4},
            {"name": "sha256:l1", "size": MI // 4},
            {"name": "sha256:l2", "size": MI // 4},
        ],
        "dockerImageMetadata": {"size": 1},
    }
    caches = FakeCaches([limit_range(storage="1Mi")], images={"sha256:x": image})
    obj = stream(status_tags={"a": ("sha256:x",)})
    assert validator(caches, FakeCharger())(request(obj)).allowed is True
    tighter = FakeCaches([limit_range(storage="1023Ki")], images={"sha256:x": image})
    assert_forbidden(
        validator(tighter, FakeCharger())(request(obj)), storage_message("1Mi", "1023Ki")
    )


def test_only_new_digests_are_size_checked_on_update() -> None:
    caches = FakeCaches(
        [limit_range(storage="1Mi")],
        images={"sha256:old-big": sized_image(5 * MI), "sha256:new-small": sized_image(10)},
    )
    old = stream(status_tags={"a": ("sha256:old-big",)})
    new = stream(status_tags={"a": ("sha256:new-small", "sha256:old-big")})
    decision = validator(caches, FakeCharger())(request(new, operation="UPDATE", old=old))
    assert decision.allowed is True
    assert caches.image_lookups == ["sha256:new-small"]


def test_a_new_big_digest_on_update_is_denied() -> None:
    caches = FakeCaches(
        [limit_range(storage="1Mi")],
        images={"sha256:old": sized_image(10), "sha256:new": sized_image(3 * MI)},
    )
    old = stream(status_tags={"a": ("sha256:old",)})
    new = stream(status_tags={"a": ("sha256:new", "sha256:old")})
    decision = validator(caches, FakeCharger())(
        request(new, operation="UPDATE", old=old, sub_resource="status")
    )
    assert_forbidden(decision, storage_message("3Mi", "1Mi"))


@pytest.mark.parametrize(
    "image",
    [None, {}, {"dockerImageMetadata": {}}, {"dockerImageMetadata": {"size": "huge"}}],
)
def test_without_a_storage_limit_no_size_is_needed_or_looked_up(image: Obj | None) -> None:
    images = {} if image is None else {"sha256:x": image}
    caches = FakeCaches([limit_range(images="5")], images=images)
    live = FakeImages()
    obj = stream(status_tags={"a": ("sha256:x",)})
    assert validator(caches, FakeCharger(), live)(request(obj)).allowed is True
    assert caches.image_lookups == ["sha256:x"]
    assert live.lookups == []


# --- images the cache does not know: one live lookup -------------------------------------


def unknown_message(digest: str, why: str, more: int = 0) -> str:
    others = f" and {more} more" if more else ""
    return (
        f"the size of image {digest}{others} is not known yet ({why}), so the storage limit "
        'per alauda.io/Image set by LimitRange "lr" cannot be checked; retry'
    )


def assert_retryable(decision: Decision, message: str) -> None:
    assert decision.allowed is False
    assert (decision.code, decision.reason) == (503, "ServiceUnavailable")
    assert decision.message == message


def status_write(*digests: str, old: tuple[str, ...] = ()) -> AdmissionRequest:
    return request(
        stream(status_tags={"a": digests}),
        operation="UPDATE",
        old=stream(status_tags={"a": old}),
        sub_resource="status",
    )


def test_an_image_missing_from_the_cache_is_looked_up_once_and_judged_by_its_size() -> None:
    caches = FakeCaches([limit_range(storage="1Mi")])
    live = FakeImages({"sha256:new": sized_image(2 * MI)})
    decision = validator(caches, FakeCharger(), live)(status_write("sha256:new"))
    assert_forbidden(decision, storage_message("2Mi", "1Mi"))
    assert live.lookups == ["sha256:new"]


def test_an_image_found_live_within_the_limit_is_allowed() -> None:
    caches = FakeCaches([limit_range(storage="1Mi")])
    live = FakeImages({"sha256:new": sized_image(MI)})
    assert validator(caches, FakeCharger(), live)(status_write("sha256:new")).allowed is True
    assert live.lookups == ["sha256:new"]


def test_an_image_the_cache_knows_without_a_size_is_read_live_too() -> None:
    """The cache may hold the Image from before its size was recorded."""
    caches = FakeCaches([limit_range(storage="1Mi")], images={"sha256:new": {}})
    live = FakeImages({"sha256:new": sized_image(10)})
    assert validator(caches, FakeCharger(), live)(status_write("sha256:new")).allowed is True
    assert live.lookups == ["sha256:new"]


def test_an_image_no_object_describes_is_a_retryable_denial() -> None:
    caches = FakeCaches([limit_range(storage="1Mi")])
    live = FakeImages()
    charger = FakeCharger()
    decision = validator(caches, charger, live)(status_write("sha256:gone"))
    assert_retryable(decision, unknown_message("sha256:gone", "no Image object describes it"))
    assert live.lookups == ["sha256:gone"]


def test_a_failed_lookup_is_a_retryable_denial(caplog: pytest.LogCaptureFixture) -> None:
    caches = FakeCaches([limit_range(storage="1Mi")])
    live = FakeImages(failing=frozenset({"sha256:x"}))
    decision = validator(caches, FakeCharger(), live)(status_write("sha256:x"))
    assert_retryable(decision, unknown_message("sha256:x", "its Image could not be read"))
    assert any("sha256:x" in m and "timed out" in m for m in caplog.messages)


def test_a_live_image_without_a_size_is_a_retryable_denial() -> None:
    caches = FakeCaches([limit_range(storage="1Mi")])
    live = FakeImages({"sha256:x": {"dockerImageReference": "r@sha256:x"}})
    decision = validator(caches, FakeCharger(), live)(status_write("sha256:x"))
    assert_retryable(decision, unknown_message("sha256:x", "its Image records no size"))


def test_cached_sized_images_and_old_digests_are_not_looked_up() -> None:
    caches = FakeCaches([limit_range(storage="1Mi")], images={"sha256:cached": sized_image(1)})
    live = FakeImages({"sha256:new": sized_image(1)})
    decision = validator(caches, FakeCharger(), live)(
        status_write("sha256:old", "sha256:cached", "sha256:new", old=("sha256:old",))
    )
    assert decision.allowed is True
    assert live.lookups == ["sha256:new"]


def test_a_create_with_an_unknown_image_is_not_charged() -> None:
    caches = FakeCaches([limit_range(storage="1Mi")])
    charger = FakeCharger()
    decision = validator(caches, charger, FakeImages())(
        request(stream(status_tags={"a": ("sha256:x",)}))
    )
    assert decision.code == 503
    assert charger.charged == [] and charger.judged == []


def test_lookups_stop_at_the_first_image_that_stays_unknown() -> None:
    """The verdict is a retryable denial from there on: no further call can change it."""
    caches = FakeCaches([limit_range(storage="1Mi")])
    live = FakeImages({"sha256:1": sized_image(1), "sha256:3": sized_image(1)})
    decision = validator(caches, FakeCharger(), live)(
        status_write("sha256:1", "sha256:2", "sha256:3")
    )
    assert_retryable(decision, unknown_message("sha256:2", "no Image object describes it", 1))
    assert live.lookups == ["sha256:1", "sha256:2"]


def test_lookups_per_write_are_capped() -> None:
    digests = [f"sha256:{n:03d}" for n in range(MAX_IMAGE_LOOKUPS + 5)]
    caches = FakeCaches([limit_range(storage="1Mi")])
    live = FakeImages({d: sized_image(1) for d in digests})
    decision = validator(caches, FakeCharger(), live)(status_write(*digests))
    assert live.lookups == digests[:MAX_IMAGE_LOOKUPS]
    assert_retryable(
        decision,
        unknown_message(digests[MAX_IMAGE_LOOKUPS], "its Image could not be read", 4),
    )


def test_lookups_share_one_time_budget() -> None:
    clock = StepClock()
    digests = [f"sha256:{n}" for n in range(5)]
    caches = FakeCaches([limit_range(storage="1Mi")])
    live = FakeImages({d: sized_image(1) for d in digests}, clock=clock, cost=0.6)
    decision = validator(caches, FakeCharger(), live)(status_write(*digests))
    assert decision.code == 503
    assert live.timeouts[0] == IMAGE_LOOKUP_TIMEOUT_SECONDS
    assert all(0 < t <= IMAGE_LOOKUP_TIMEOUT_SECONDS for t in live.timeouts)
    assert len(live.lookups) == 3  # 0.6 s each within a 1.5 s budget
    assert live.timeouts[-1] == pytest.approx(IMAGE_LOOKUP_BUDGET_SECONDS - 1.2)


def test_the_lookup_budget_and_a_charge_fit_in_the_webhook_timeout() -> None:
    assert IMAGE_LOOKUP_TIMEOUT_SECONDS <= IMAGE_LOOKUP_BUDGET_SECONDS
    assert (
        TIMEOUT_SECONDS[VALIDATE_IMAGESTREAMS]
        > IMAGE_LOOKUP_BUDGET_SECONDS + CHARGE_DEADLINE_SECONDS
    )


def test_storage_and_count_violations_are_reported_together_size_first() -> None:
    caches = FakeCaches(
        [limit_range(storage="1Mi", images="1")],
        images={"sha256:a": sized_image(2 * MI), "sha256:b": sized_image(1)},
    )
    obj = stream(status_tags={"a": ("sha256:a", "sha256:b")})
    decision = validator(caches, FakeCharger())(request(obj))
    assert_forbidden(decision, f"{storage_message('2Mi', '1Mi')}; {images_message(2, 1)}")


# --- quota -------------------------------------------------------------------------------


def test_a_real_create_charges_quota_once() -> None:
    charger = FakeCharger()
    decision = validator(FakeCaches(), charger)(request(stream()))
    assert decision == Decision.allow()
    assert charger.charged == [NS]
    assert charger.judged == []


def test_a_dry_run_create_is_judged_and_never_charged() -> None:
    charger = FakeCharger()
    decision = validator(FakeCaches(), charger)(request(stream(), dry_run=True))
    assert decision.allowed is True
    assert charger.judged == [NS]
    assert charger.charged == []


def test_a_dry_run_create_gets_the_quota_denial_too() -> None:
    message = quota_exceeded_message("q", 1, 5, 5)
    charger = FakeCharger(ChargePlan(Decision.deny(message, Cause.QUOTA_EXCEEDED)))
    decision = validator(FakeCaches(), charger)(request(stream(), dry_run=True))
    assert_forbidden(decision, message)
    assert charger.charged == []


@pytest.mark.parametrize("sub_resource", ["", "status"])
def test_updates_never_charge_or_judge_quota(sub_resource: str) -> None:
    charger = FakeCharger(ChargePlan(Decision.deny("exceeded quota: q", Cause.QUOTA_EXCEEDED)))
    decision = validator(FakeCaches(), charger)(
        request(stream(), operation="UPDATE", old=stream(), sub_resource=sub_resource)
    )
    assert decision.allowed is True
    assert charger.charged == [] and charger.judged == []


def test_a_status_subresource_create_is_not_charged() -> None:
    charger = FakeCharger()
    decision = validator(FakeCaches(), charger)(request(stream(), sub_resource="status"))
    assert decision.allowed is True
    assert charger.charged == [] and charger.judged == []


def test_the_quota_denial_passes_through_with_code_and_reason() -> None:
    message = quota_exceeded_message("compute", 1, 5, 5)
    assert message == (
        "exceeded quota: compute, requested: alauda.io/imagestreams=1, "
        "used: alauda.io/imagestreams=5, limited: alauda.io/imagestreams=5"
    )
    charger = FakeCharger(ChargePlan(Decision.deny(message, Cause.QUOTA_EXCEEDED)))
    decision = validator(FakeCaches(), charger)(request(stream()))
    assert_forbidden(decision, message)
    assert charger.charged == [NS]


def test_plan_code_and_reason_are_not_rewritten() -> None:
    plan = Decision(False, code=409, reason="SomethingElse", message="m", cause=Cause.REFUSED)
    charger = FakeCharger(ChargePlan(plan))
    decision = validator(FakeCaches(), charger)(request(stream()))
    assert decision == plan


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_charge_conflict_is_a_retryable_429(dry_run: bool) -> None:
    charger = FakeCharger(conflict=True)
    decision = validator(FakeCaches(), charger)(request(stream(), dry_run=dry_run))
    assert decision.allowed is False
    assert decision.code == 429
    assert decision.reason == "TooManyRequests"
    assert decision.message.startswith(f"could not charge quota in {NS}")
    assert decision.message.endswith("; retry")


def test_the_limits_of_the_request_namespace_are_read() -> None:
    caches = FakeCaches([limit_range(tags="1")])
    validator(caches, FakeCharger())(request(stream(spec_tags=("a",))))
    assert caches.limit_lookups == [NS]


def test_the_name_comes_from_the_object_when_the_request_has_none() -> None:
    caches = FakeCaches([limit_range(tags="1")])
    decision = validator(caches, FakeCharger())(
        request(stream(name="from-object", spec_tags=("a", "b")), name="")
    )
    assert decision.message == tags_message(2, 1, name="from-object")


def test_a_broken_limit_is_skipped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    broken = {
        "metadata": {"name": "old", "namespace": NS},
        "spec": {"limits": [{"type": "alauda.io/ImageStream", "max": {"alauda.io/images": "-1"}}]},
    }
    decision = validator(FakeCaches([broken]), FakeCharger())(request(stream(spec_tags=("a",))))
    assert decision.allowed
    [line] = [m for m in caplog.messages if m.startswith("ignoring a broken limit")]
    assert line.startswith(f'ignoring a broken limit in {NS}: LimitRange "old": spec.limits[0]')


def lookups_counted(result: str) -> float:
    return (
        REGISTRY.get_sample_value("registry_v2_policy_image_lookups_total", {"result": result})
        or 0.0
    )


def test_each_live_lookup_is_counted_by_result() -> None:
    before = {r: lookups_counted(r) for r in ("found", "not_found", "failed")}
    caches = FakeCaches([limit_range(storage="1Mi")])
    live = FakeImages({"sha256:1": sized_image(1)}, failing=frozenset({"sha256:3"}))
    check = validator(caches, FakeCharger(), live)
    check(status_write("sha256:1", "sha256:2"))
    check(status_write("sha256:3"))
    after = {r: lookups_counted(r) - before[r] for r in before}
    assert after == {"found": 1, "not_found": 1, "failed": 1}
