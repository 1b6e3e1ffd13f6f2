"""Hypothesis strategies for request bodies: every fuzz run draws from these.

Bodies are arbitrary JSON (huge and overflowing numbers, deep nesting, wrong types,
unicode), AdmissionReview and PushReview shapes with arbitrary parts, and raw bytes.
``shapes(valid_reviews(path))`` and ``shapes(valid_pushes)`` are the mixes the fuzzers send.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

# Numbers Python's json cannot read (over 4,300 digits): a live 500 before.
HUGE_NUMBERS = (b"9" * 5000, b"-" + b"1" * 4400)
ADMISSION_PATHS = ("/mutate/serviceaccounts", "/validate/imagestreams", "/validate/policies")
PUSH_PATH = "/v1/pushreviews"

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**64, -(2**63), -1, 0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["1e999", "-0", "NaN"]).map(float),
    st.text(max_size=20),
    st.sampled_from(["", "team-a", "kube-system", "CREATE", "UPDATE", "sha256:ab", "v1"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.one_of(
                st.text(max_size=8),
                st.sampled_from(["metadata", "spec", "status", "tags", "items", "name", "image"]),
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=25,
)


def maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Usually the well-formed value, sometimes anything at all (inside objects)."""
    return st.one_of(value, value, value, value, json_values)


def _serviceaccounts() -> st.SearchStrategy[Any]:
    entry = st.fixed_dictionaries({"name": maybe(st.sampled_from(["app-dockercfg", "user"]))})
    return st.fixed_dictionaries(
        {
            "metadata": maybe(
                st.fixed_dictionaries(
                    {
                        "name": maybe(st.sampled_from(["app", "a" * 250])),
                        "annotations": maybe(
                            st.dictionaries(
                                st.sampled_from(
                                    [
                                        "image.alauda.io/managed-pull-secret",
                                        "image.alauda.io/internal-registry-pull-secret-ref",
                                    ]
                                ),
                                maybe(st.sampled_from(["false", "true", "app-dockercfg"])),
                            )
                        ),
                    }
                )
            ),
            "imagePullSecrets": maybe(st.lists(maybe(entry), max_size=3)),
        }
    )


def _streams() -> st.SearchStrategy[Any]:
    tag = st.fixed_dictionaries({"name": maybe(st.sampled_from(["v1", "v2", "v3"]))})
    item = st.fixed_dictionaries({"image": maybe(st.sampled_from(["sha256:a", "sha256:bb"]))})
    status_tag = st.fixed_dictionaries(
        {"tag": maybe(st.sampled_from(["v1", "v4"])), "items": maybe(st.lists(item))}
    )
    return st.fixed_dictionaries(
        {
            "metadata": maybe(st.fixed_dictionaries({"name": maybe(st.just("app"))})),
            "spec": maybe(st.fixed_dictionaries({"tags": maybe(st.lists(tag, max_size=4))})),
            "status": maybe(
                st.fixed_dictionaries({"tags": maybe(st.lists(status_tag, max_size=4))})
            ),
        }
    )


def _policies() -> st.SearchStrategy[Any]:
    quantity = maybe(st.sampled_from(["1", "-1", "1Gi", "0.5", "1e3", "abc", ""]))
    item = st.fixed_dictionaries(
        {
            "type": maybe(st.sampled_from(["alauda.io/Image", "alauda.io/ImageStream", "Pod"])),
            "max": maybe(
                st.dictionaries(
                    st.sampled_from(["storage", "alauda.io/image-tags", "alauda.io/images"]),
                    quantity,
                )
            ),
            "min": maybe(st.dictionaries(st.just("storage"), quantity)),
        }
    )
    return st.fixed_dictionaries(
        {
            "metadata": maybe(st.fixed_dictionaries({"name": maybe(st.just("p"))})),
            "spec": maybe(
                st.fixed_dictionaries(
                    {
                        "limits": maybe(st.lists(item, max_size=3)),
                        "hard": maybe(st.dictionaries(st.just("alauda.io/imagestreams"), quantity)),
                    }
                )
            ),
        }
    )


OBJECTS = {
    "/mutate/serviceaccounts": _serviceaccounts(),
    "/validate/imagestreams": _streams(),
    "/validate/policies": _policies(),
}


def admission_requests(objects: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "uid": st.text(min_size=1, max_size=12),
            "kind": st.fixed_dictionaries(
                {
                    "group": st.sampled_from(["", "image.alauda.io"]),
                    "version": st.just("v1"),
                    "kind": st.sampled_from(
                        ["ServiceAccount", "LimitRange", "ResourceQuota", "ImageStream"]
                    ),
                }
            ),
            "resource": st.fixed_dictionaries(
                {
                    "group": st.just(""),
                    "version": st.just("v1"),
                    "resource": st.sampled_from(["imagestreams", "serviceaccounts", "limitranges"]),
                }
            ),
            "subResource": st.sampled_from(["", "status"]),
            "operation": st.sampled_from(["CREATE", "UPDATE", "DELETE"]),
            "namespace": st.sampled_from(["team-a", "team-a", "team-b", "kube-system"]),
            "name": st.sampled_from(["app", ""]),
            "object": objects,
            "oldObject": st.none() | objects,
            "dryRun": st.booleans(),
            "userInfo": st.fixed_dictionaries({"username": st.just("u")}),
        }
    )


def valid_reviews(path: str) -> st.SearchStrategy[dict[str, Any]]:
    return admission_requests(OBJECTS[path]).map(
        lambda request: {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": request,
        }
    )


push_specs = st.fixed_dictionaries(
    {
        "namespace": st.sampled_from(["team-a", "team-b"]),
        "repository": st.sampled_from(["app", "new-app"]),
        "tag": st.sampled_from(["v1", "v2", "v9"]) | st.none(),
        "digest": st.sampled_from(["sha256:" + "a" * 64, "sha256:" + "b" * 64]),
        "mediaType": st.just("application/vnd.oci.image.manifest.v1+json"),
        "config": st.fixed_dictionaries(
            {"digest": st.just("sha256:c"), "size": st.integers(0, 2 * 1024 * 1024)}
        ),
        "layers": st.lists(
            st.fixed_dictionaries(
                {
                    "digest": st.sampled_from(["sha256:l1", "sha256:l2"]),
                    "size": st.integers(0, 2 * 1024 * 1024),
                }
            ),
            max_size=3,
        ),
    }
)
valid_pushes = push_specs.map(
    lambda spec: {"apiVersion": "image.alauda.io/v1", "kind": "PushReview", "spec": spec}
)


@st.composite
def one_part_broken(draw: st.DrawFn, valid: st.SearchStrategy[dict[str, Any]]) -> Any:
    """A valid body with one field, at any depth, replaced by arbitrary JSON."""
    body = draw(valid)
    node: Any = body
    while True:
        key = draw(st.sampled_from(sorted(node)))
        if isinstance(node[key], dict) and node[key] and draw(st.booleans()):
            node = node[key]
            continue
        node[key] = draw(json_values)
        return body


def shapes(valid: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    """Mostly valid envelopes (so the handlers run), some with one broken part, some noise."""
    return st.one_of(
        valid.map(encode),
        valid.map(encode),
        valid.map(encode),
        one_part_broken(valid).map(encode),
        st.builds(with_huge_number, valid, st.sampled_from(HUGE_NUMBERS)),
        json_values.map(encode),
        st.binary(max_size=64),
    )


def encode(body: Any) -> bytes:
    """JSON as Go or a proxy might send it: Python writes NaN/Infinity for non-finite
    floats, which RFC 8259 has no place for, so those bodies try the 400 path."""
    return json.dumps(body).encode()


def with_huge_number(body: dict[str, Any], number: bytes) -> bytes:
    """``body`` with one more top-level field holding a number Python cannot convert."""
    return encode(body)[:-1] + b', "n": ' + number + b"}"
