"""The caches' answers the handlers rely on: a pull Secret's metadata by name, and objects
cached smaller but judged by the rules exactly as the originals."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from kubernetes import client

from bench import scale
from quota.limits import effective_limits
from quota.measure import recorded_image_size, stream_usage
from quota.objects import object_key
from quota.pullsecrets.desired_secret import may_reference
from quota.pullsecrets.names import (
    ANNOTATION_SERVICE_ACCOUNT_NAME,
    ANNOTATION_TOKEN_EXPIRATION,
    LABEL_MANAGED_BY,
    LABEL_MANAGED_BY_VALUE,
)
from quota.served import recorded_repository
from serving.caches import (
    PULL_SECRET_TYPES,
    NotSynced,
    PushCaches,
    WebhookCaches,
    image_digests,
)


class FakeInformer:
    def __init__(self, name: str, objects: dict[str, Any], synced: bool = True) -> None:
        self.name = name
        self.objects = objects
        self.synced = synced

    def has_synced(self) -> bool:
        return self.synced

    def get(self, key: str) -> Any:
        return self.objects.get(key)


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


# --- what each cache keeps: the rules judge a cached object as they judge the original ---

MANAGED_FIELDS = [{"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {}}}]
META = {
    "name": "x",
    "namespace": "team-a",
    "uid": "u1",
    "resourceVersion": "7",
    "labels": {"image.alauda.io/managed-pull-secret": "false"},
    "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}"},
    "managedFields": MANAGED_FIELDS,
}

json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 10**9), st.text(max_size=8), st.just("sha256:ab")
)
json_any = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the expected shape, sometimes any JSON: caches hold whatever was stored."""
    return st.one_of(strategy, strategy, strategy, strategy, json_any)


def objects(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"metadata": st.just(META)}, optional={"junk": json_any, **fields})


SHA = "sha256:" + "ab" * 32
digests = st.sampled_from(
    ["sha256:a", SHA, SHA.upper(), "sha256:" + "cd" * 32, "sha512:" + "ab" * 32, "", "x"]
)
history_item = st.fixed_dictionaries(
    {}, optional={"image": maybe(digests), "created": json_any, "dockerImageReference": json_any}
)
status_tag = st.fixed_dictionaries(
    {},
    optional={
        "tag": maybe(st.sampled_from(["v1", "v2", ""])),
        "items": maybe(st.lists(maybe(history_item), max_size=3)),
    },
)
streams = objects(
    spec=maybe(
        st.fixed_dictionaries(
            {},
            optional={
                "tags": maybe(
                    st.lists(
                        maybe(
                            st.fixed_dictionaries(
                                {},
                                optional={
                                    "name": maybe(st.sampled_from(["v1", "v3"])),
                                    "from": json_any,
                                },
                            )
                        ),
                        max_size=3,
                    )
                )
            },
        )
    ),
    status=maybe(
        st.fixed_dictionaries(
            {},
            optional={
                "tags": maybe(st.lists(maybe(status_tag), max_size=3)),
                "dockerImageRepository": json_any,
            },
        )
    ),
)
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
limit_item = st.fixed_dictionaries(
    {},
    optional={
        "type": maybe(st.sampled_from(["alauda.io/Image", "alauda.io/ImageStream", "Container"])),
        "max": maybe(
            st.dictionaries(
                st.sampled_from(["storage", "alauda.io/images", "alauda.io/image-tags", "cpu"]),
                maybe(st.sampled_from(["1Gi", "10", "-1", "x"])),
                max_size=3,
            )
        ),
    },
)
limit_ranges = objects(
    spec=maybe(
        st.fixed_dictionaries(
            {}, optional={"limits": maybe(st.lists(maybe(limit_item), max_size=3))}
        )
    )
)


def _cached(informer: Any, obj: dict[str, Any]) -> dict[str, Any]:
    transformed: dict[str, Any] = informer.transform(copy.deepcopy(obj))
    assert "managedFields" not in transformed["metadata"]
    assert object_key(transformed) == object_key(obj)
    return transformed


REGISTRY_STREAM = scale.stream("team-a", "app", 0)


@settings(max_examples=200, deadline=None)
@given(streams)
@example(REGISTRY_STREAM)
def test_a_cached_stream_counts_the_same_tags_and_images(stream: dict[str, Any]) -> None:
    built = WebhookCaches(client.ApiClient())
    cached = _cached(built.imagestreams, stream)
    built.imagestreams = FakeInformer("imagestreams", {"team-a/x": cached})  # type: ignore[assignment]
    assert built.imagestream_usage("team-a", "x") == stream_usage(stream)
    assert built.imagestream_usage("team-a", "y") is None


@settings(max_examples=200, deadline=None)
@given(streams)
@example(REGISTRY_STREAM)
def test_a_cached_stream_serves_the_same_reads_as_the_original(stream: dict[str, Any]) -> None:
    """Each tag's current image and the whole history: what the front door forwards a
    manifest read by, from the cache exactly as from the stream itself."""
    built = PushCaches(client.ApiClient(), reads=True)
    cached = _cached(built.imagestreams, stream)
    built.imagestreams = FakeInformer("imagestreams", {"team-a/x": cached})  # type: ignore[assignment]
    assert built.recorded("team-a", "x") == recorded_repository(stream)
    assert built.recorded("team-a", "y") is None


@settings(max_examples=200, deadline=None)
@given(images)
def test_a_cached_image_has_the_same_size_and_digests(image: dict[str, Any]) -> None:
    cached = _cached(WebhookCaches(client.ApiClient()).images, image)
    assert recorded_image_size(cached) == recorded_image_size(image)
    assert image_digests(cached) == image_digests(image)


@settings(max_examples=200, deadline=None)
@given(st.lists(limit_ranges, max_size=3))
def test_cached_limit_ranges_give_the_same_limits(ranges: list[dict[str, Any]]) -> None:
    informer = WebhookCaches(client.ApiClient()).limit_ranges
    try:
        expected: Any = effective_limits(ranges)
    except Exception as err:  # a broken range fails alike, cached or not
        expected = type(err)
    try:
        got: Any = effective_limits([_cached(informer, r) for r in ranges])
    except Exception as err:
        got = type(err)
    assert got == expected


def test_a_cached_namespace_keeps_its_labels_only() -> None:
    namespace = {"metadata": META, "spec": {"finalizers": ["kubernetes"]}, "status": {}}
    cached = _cached(WebhookCaches(client.ApiClient()).namespaces, namespace)
    assert cached == {
        "metadata": {k: META[k] for k in ("name", "namespace", "resourceVersion", "labels")}
    }


def test_quotas_written_back_by_the_charge_lose_managed_fields_only() -> None:
    built = WebhookCaches(client.ApiClient())
    quota = {"metadata": META, "spec": {"hard": {"x": "1"}}, "status": {"used": {"x": "0"}}}
    cached = _cached(built.resource_quotas, quota)
    assert cached == {**quota, "metadata": {k: v for k, v in META.items() if k != "managedFields"}}
    assert all("managedFields" not in _cached(i, quota)["metadata"] for i in built.informers)


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
        assert may_reference(_cached(informer, secret), sa) == may_reference(secret, sa)


def test_a_registry_image_is_cached_at_a_fraction_of_its_size() -> None:
    image = scale.image(7)
    image["metadata"] = {**image["metadata"], "managedFields": MANAGED_FIELDS * 3}
    cached = _cached(WebhookCaches(client.ApiClient()).images, image)
    assert len(json.dumps(cached)) < len(json.dumps(image)) / 10
    assert cached["dockerImageMetadata"] == {"size": 1469 + sum(range(1_000_000, 1_000_005))}


def test_a_cached_stream_gives_back_every_digest_as_it_was_spelled() -> None:
    """sha256 digests are packed into bytes; anything else (other algorithms, upper case,
    no algorithm) is kept as written, so no digest is lost or respelled."""
    spelled = [SHA, "sha256:" + "cd" * 32, SHA.upper(), "sha256:" + "AB" * 32, "ab" * 32, "x"]
    stream = {
        "metadata": {"name": "x", "namespace": "team-a"},
        "status": {"tags": [{"tag": "v1", "items": [{"image": d} for d in spelled]}]},
    }
    built = WebhookCaches(client.ApiClient())
    cached = built.imagestreams.transform(stream)
    assert len(cached["sha256"]) == 2 * 32
    built.imagestreams = FakeInformer("imagestreams", {"team-a/x": cached})  # type: ignore[assignment]
    usage = built.imagestream_usage("team-a", "x")
    assert usage is not None and usage.images == frozenset(spelled)


def test_only_the_front_doors_caches_keep_each_tags_current_image() -> None:
    """The webhook server judges usage alone: the tags' current images would be memory
    it never reads."""
    stream = {
        "metadata": {"name": "x", "namespace": "team-a"},
        "status": {"tags": [{"tag": "v1", "items": [{"image": SHA}]}]},
    }
    assert "current" not in WebhookCaches(client.ApiClient()).imagestreams.transform(stream)
    kept = PushCaches(client.ApiClient(), reads=True).imagestreams.transform(stream)
    assert kept["current"] == (("v1", SHA),)
