"""Cached objects for the caches' tests: fake informers, and strategies for the shapes the
caches hold (mostly the expected shape, sometimes any JSON), shared by each door's tests."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from bench import scale
from quota.objects import object_key


class FakeInformer:
    def __init__(
        self,
        name: str,
        objects: dict[str, Any],
        synced: bool = True,
        index: Callable[[Any], list[str]] = lambda _: [],
    ) -> None:
        self.name = name
        self.index = index
        self.objects = objects
        self.synced = synced

    def has_synced(self) -> bool:
        return self.synced

    def get(self, key: str) -> Any:
        return self.objects.get(key)

    def by_index(self, value: str) -> list[Any]:
        """Objects whose ``index`` holds ``value``, as ``Informer.by_index`` gives them."""
        return [o for o in self.objects.values() if value in self.index(o)]


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


def cached_copy(informer: Any, obj: dict[str, Any]) -> dict[str, Any]:
    transformed: dict[str, Any] = informer.transform(copy.deepcopy(obj))
    assert "managedFields" not in transformed["metadata"]
    assert object_key(transformed) == object_key(obj)
    return transformed


REGISTRY_STREAM = scale.stream("team-a", "app", 0)
