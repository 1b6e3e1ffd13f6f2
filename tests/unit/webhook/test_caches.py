"""``serve``'s caches: a pull Secret's metadata by name, and Images, namespaces and pull
Secrets cached smaller but judged by the rules exactly as the originals."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from kubernetes import client

from bench import scale
from quota.limitchecks import Unsized, size_of
from quota.pullsecrets.desired_secret import may_reference
from quota.pullsecrets.names import (
    ANNOTATION_SERVICE_ACCOUNT_NAME,
    ANNOTATION_TOKEN_EXPIRATION,
    LABEL_MANAGED_BY,
    LABEL_MANAGED_BY_VALUE,
)
from tests.unit.serving.cachedobjects import (
    MANAGED_FIELDS,
    META,
    SHA,
    FakeInformer,
    cached_copy,
    digests,
    json_any,
    maybe,
    objects,
)
from webhook.caches import (
    IMAGE_SIZE,
    PULL_SECRET_TYPES,
    NotSynced,
    WebhookCaches,
    cached_image,
    image_digests,
)


def caches(*informers: FakeInformer) -> WebhookCaches:
    built = WebhookCaches(client.ApiClient())
    built.pull_secrets = list(informers)  # type: ignore[arg-type]
    return built


def test_both_kubelet_pull_secret_types_are_watched() -> None:
    built = WebhookCaches(client.ApiClient())
    assert PULL_SECRET_TYPES == ("kubernetes.io/dockerconfigjson", "kubernetes.io/dockercfg")
    assert [i.name for i in built.pull_secrets] == [f"secrets({t})" for t in PULL_SECRET_TYPES]
    assert all(i in built.informers for i in built.pull_secrets)


def test_a_pull_secret_of_either_type_is_found() -> None:
    legacy = {"metadata": {"name": "a-dockercfg"}}
    built = caches(FakeInformer("json", {}), FakeInformer("legacy", {"ns/a-dockercfg": legacy}))
    assert built.pull_secret("ns", "a-dockercfg") is legacy
    assert built.pull_secret("ns", "b-dockercfg") is None


def test_absence_before_the_first_list_is_not_an_answer() -> None:
    built = caches(FakeInformer("json", {}), FakeInformer("legacy", {}, synced=False))
    with pytest.raises(NotSynced, match="legacy"):
        built.pull_secret("ns", "a-dockercfg")


descriptor = st.fixed_dictionaries(
    {},
    optional={
        "name": maybe(digests),
        "digest": maybe(digests),
        "size": maybe(st.integers(-1, 10**9)),
        "mediaType": json_any,
    },
)
images = objects(
    dockerImageReference=maybe(st.sampled_from(["r/app@sha256:a", "r/app:v1", "r@"])),
    dockerImageConfig=maybe(descriptor),
    dockerImageLayers=maybe(st.lists(maybe(descriptor), max_size=3)),
    dockerImageMetadata=maybe(
        st.fixed_dictionaries(
            {}, optional={"size": maybe(st.integers(-1, 10**9)), "config": json_any}
        )
    ),
)


@settings(max_examples=200, deadline=None)
@given(images)
def test_a_cached_image_has_the_same_size_and_digests(image: dict[str, Any]) -> None:
    built = WebhookCaches(client.ApiClient())
    cached = cached_copy(built.images, image)
    built.images = FakeInformer("images", {"x": cached})  # type: ignore[assignment]
    assert built.image_size("x") == size_of(image)
    assert image_digests(cached) == image_digests(image)


def test_a_cached_namespace_keeps_its_labels_only() -> None:
    namespace = {"metadata": META, "spec": {"finalizers": ["kubernetes"]}, "status": {}}
    cached = cached_copy(WebhookCaches(client.ApiClient()).namespaces, namespace)
    assert cached == {
        "metadata": {k: META[k] for k in ("name", "namespace", "resourceVersion", "labels")}
    }


def test_quotas_written_back_by_the_charge_lose_managed_fields_only() -> None:
    built = WebhookCaches(client.ApiClient())
    quota = {"metadata": META, "spec": {"hard": {"x": "1"}}, "status": {"used": {"x": "0"}}}
    cached = cached_copy(built.resource_quotas, quota)
    assert cached == {**quota, "metadata": {k: v for k, v in META.items() if k != "managedFields"}}
    assert all("managedFields" not in cached_copy(i, quota)["metadata"] for i in built.informers)


owner = st.fixed_dictionaries(
    {},
    optional={
        "apiVersion": maybe(st.sampled_from(["v1", "apps/v1"])),
        "kind": maybe(st.sampled_from(["ServiceAccount", "Deployment"])),
        "name": maybe(st.sampled_from(["builder", "other"])),
        "uid": maybe(st.sampled_from(["sa-uid", "old-uid"])),
        "controller": json_any,
    },
)
secret_metadata = st.fixed_dictionaries(
    {"name": st.just("builder-dockercfg"), "namespace": st.just("team-a")},
    optional={
        "labels": maybe(
            st.dictionaries(
                st.sampled_from([LABEL_MANAGED_BY, "app"]),
                maybe(st.sampled_from([LABEL_MANAGED_BY_VALUE, "someone"])),
            )
        ),
        "annotations": maybe(
            st.dictionaries(
                st.sampled_from([ANNOTATION_SERVICE_ACCOUNT_NAME, ANNOTATION_TOKEN_EXPIRATION]),
                maybe(st.sampled_from(["builder", "2026-01-01T00:00:00Z"])),
            )
        ),
        "ownerReferences": maybe(st.lists(maybe(owner), max_size=3)),
        "managedFields": st.just(MANAGED_FIELDS),
    },
)


OWNED = {
    "name": "builder-dockercfg",
    "namespace": "team-a",
    "labels": {LABEL_MANAGED_BY: LABEL_MANAGED_BY_VALUE},
    "ownerReferences": [
        {"apiVersion": "v1", "kind": "ServiceAccount", "name": "builder", "uid": "sa-uid"}
    ],
    "managedFields": MANAGED_FIELDS,
}


@settings(max_examples=300, deadline=None)
@given(secret_metadata, st.sampled_from(["sa-uid", None]))
@example(OWNED, "sa-uid")
@example({**OWNED, "labels": {}, "annotations": {ANNOTATION_SERVICE_ACCOUNT_NAME: "b"}}, "sa-uid")
def test_a_cached_pull_secret_is_judged_as_the_original(
    meta: dict[str, Any], uid: str | None
) -> None:
    """Metadata only, and of that only the managed markers and the owners."""
    built = WebhookCaches(client.ApiClient())
    secret = {"metadata": meta}
    sa = {"metadata": {"name": "builder", "namespace": "team-a", **({"uid": uid} if uid else {})}}
    for informer in built.pull_secrets:
        assert may_reference(cached_copy(informer, secret), sa) == may_reference(secret, sa)


def test_a_registry_image_is_cached_at_a_fraction_of_its_size() -> None:
    """Its size, and for the storage quota its blobs' digests and sizes: about 120 bytes a
    layer, where the Image's own metadata and history are kilobytes."""
    image = scale.image(7)
    image["metadata"] = {**image["metadata"], "managedFields": MANAGED_FIELDS * 3}
    cached = cached_copy(WebhookCaches(client.ApiClient()).images, image)
    assert len(json.dumps(dict(cached))) < len(json.dumps(image)) / 2
    assert cached[IMAGE_SIZE] == 1469 + sum(range(1_000_000, 1_000_005))
    assert set(cached) == {
        "metadata",
        "dockerImageReference",
        "dockerImageConfig",
        "dockerImageLayers",
        IMAGE_SIZE,
    }
    assert all(set(layer) == {"name", "size"} for layer in cached["dockerImageLayers"])


def test_an_images_size_is_found_by_its_name_or_its_reference() -> None:
    """CRD names cannot hold ':': such an Image is found by its dockerImageReference."""
    by_reference = cached_image({"metadata": {"name": "crd"}, "dockerImageReference": f"r@{SHA}"})
    unsized = cached_image({"metadata": {"name": "sha256:b"}})
    built = WebhookCaches(client.ApiClient())
    built.images = FakeInformer(  # type: ignore[assignment]
        "images", {"crd": {**by_reference, IMAGE_SIZE: 7}, "sha256:b": unsized}, index=image_digests
    )
    assert built.image_size(SHA) == 7
    assert built.image_size("sha256:b") is Unsized.NO_SIZE
    assert built.image_size("sha256:c") is Unsized.NO_IMAGE


def test_the_webhook_servers_caches_keep_no_tags_current_image() -> None:
    """It judges usage alone: the tags' current images would be memory it never reads."""
    stream = {
        "metadata": {"name": "x", "namespace": "team-a"},
        "status": {"tags": [{"tag": "v1", "items": [{"image": SHA}]}]},
    }
    assert "current" not in WebhookCaches(client.ApiClient()).imagestreams.transform(stream)
