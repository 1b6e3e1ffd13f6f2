"""PushReview bodies: strict parsing and the answer's shape."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from quota.decision import Cause, Decision
from quota.measure import Descriptor
from quota.objects import Obj
from serving.httpjson import JsonLimits, check_cost
from webhook.pushreview.review import (
    LAYER_BYTES_PER_VALUE,
    MAX_BODY_BYTES,
    BadPushReview,
    answer,
    parse_push_review,
)

JSON = "application/json"
DIGEST = "sha256:" + "a" * 64
CONFIG = "sha256:" + "c" * 64
LAYER = "sha256:" + "1" * 64


def body(**spec_changes: Any) -> Obj:
    spec: Obj = {
        "namespace": "team-a",
        "repository": "app",
        "tag": "v2",
        "digest": DIGEST,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"digest": CONFIG, "size": 1469},
        "layers": [{"digest": LAYER, "size": 2811478}],
    }
    for key, value in spec_changes.items():
        if value is _ABSENT:
            spec.pop(key, None)
        else:
            spec[key] = value
    return {"apiVersion": "image.alauda.io/v1", "kind": "PushReview", "spec": spec}


_ABSENT = object()


def encode(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def test_a_valid_body_parses_and_round_trips() -> None:
    original = body()
    wire = parse_push_review(encode(original), JSON)
    push = wire.push
    assert push.namespace == "team-a"
    assert push.repository == "app"
    assert push.tag == "v2"
    assert push.digest == DIGEST
    assert push.media_type == "application/vnd.oci.image.manifest.v1+json"
    assert push.manifest.config == Descriptor(CONFIG, 1469)
    assert push.manifest.layers == (Descriptor(LAYER, 2811478),)
    out = answer(wire, Decision.deny("no", Cause.QUOTA_EXCEEDED))
    assert out == {**original, "status": {"allowed": False, "reason": "Forbidden", "message": "no"}}


def test_answer_does_not_change_the_parsed_body() -> None:
    push = parse_push_review(encode(body()), JSON)
    before = copy.deepcopy(push.body)
    out = answer(push, Decision.allow())
    assert push.body == before
    assert "status" not in push.body
    assert out["status"] == {"allowed": True, "reason": "", "message": ""}


def test_unknown_fields_are_echoed() -> None:
    original = body()
    original["metadata"] = {"name": "x"}
    original["spec"]["annotations"] = {"k": "v"}
    out = answer(parse_push_review(encode(original), JSON), Decision.allow())
    assert out["metadata"] == {"name": "x"}
    assert out["spec"]["annotations"] == {"k": "v"}


@pytest.mark.parametrize("tag", [_ABSENT, None, ""])
def test_an_absent_or_empty_tag_means_a_push_by_digest(tag: object) -> None:
    push = parse_push_review(encode(body(tag=tag)), JSON).push
    assert push.tag is None
    assert push.digest == DIGEST


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON", " application/json "]
)
def test_json_content_types_are_accepted(content_type: str) -> None:
    assert parse_push_review(encode(body()), content_type).push.repository == "app"


def test_config_and_layers_may_be_absent_or_null() -> None:
    push = parse_push_review(encode(body(config=None, layers=_ABSENT)), JSON).push
    assert push.manifest.config is None
    assert push.manifest.layers == ()
    assert push.manifest.size == 0


def test_media_type_may_be_absent() -> None:
    assert parse_push_review(encode(body(mediaType=_ABSENT)), JSON).push.media_type == ""


@pytest.mark.parametrize("content_type", [None, "", "text/plain", "application/yaml"])
def test_wrong_content_type_is_named(content_type: str | None) -> None:
    with pytest.raises(BadPushReview, match="content type"):
        parse_push_review(encode(body()), content_type)


@pytest.mark.parametrize("raw", [b"", b"{", b"not json", b"\xff\xfe\x00garbage", b"[" * 100_000])
def test_invalid_json_is_named(raw: bytes) -> None:
    with pytest.raises(BadPushReview, match="JSON"):
        parse_push_review(raw, JSON)


@pytest.mark.parametrize("raw", [b"[]", b"1", b'"s"', b"null"])
def test_a_body_that_is_not_an_object_is_refused(raw: bytes) -> None:
    with pytest.raises(BadPushReview, match="JSON object"):
        parse_push_review(raw, JSON)


def _with(top: Obj, **changes: Any) -> Obj:
    out = copy.deepcopy(top)
    for key, value in changes.items():
        if value is _ABSENT:
            out.pop(key, None)
        else:
            out[key] = value
    return out


@pytest.mark.parametrize(
    ("review", "field"),
    [
        (_with(body(), apiVersion=_ABSENT), "apiVersion"),
        (_with(body(), apiVersion="image.alauda.io/v2"), "apiVersion"),
        (_with(body(), apiVersion="v1"), "apiVersion"),
        (_with(body(), kind=_ABSENT), "kind"),
        (_with(body(), kind="ImageStream"), "kind"),
        (_with(body(), spec=_ABSENT), "spec"),
        (_with(body(), spec=None), "spec"),
        (_with(body(), spec=[]), "spec"),
        (_with(body(), spec="x"), "spec"),
        (body(namespace=_ABSENT), "spec.namespace"),
        (body(namespace=""), "spec.namespace"),
        (body(namespace=3), "spec.namespace"),
        (body(namespace="Team-A"), "spec.namespace"),
        (body(namespace="team_a"), "spec.namespace"),
        (body(namespace="a" * 64), "spec.namespace"),
        (body(namespace="-x"), "spec.namespace"),
        (body(repository=_ABSENT), "spec.repository"),
        (body(repository=""), "spec.repository"),
        (body(repository=["app"]), "spec.repository"),
        (body(repository="App"), "spec.repository"),
        (body(repository="team/app"), "spec.repository"),
        (body(repository="a" * 254), "spec.repository"),
        (body(tag=7), "spec.tag"),
        (body(tag="-bad"), "spec.tag"),
        (body(tag="has space"), "spec.tag"),
        (body(tag="a" * 129), "spec.tag"),
        (body(digest=_ABSENT), "spec.digest"),
        (body(digest=""), "spec.digest"),
        (body(digest=5), "spec.digest"),
        (body(digest="not-a-digest"), "spec.digest"),
        (body(digest="sha256:"), "spec.digest"),
        (body(mediaType=1), "spec.mediaType"),
        (body(mediaType=["x"]), "spec.mediaType"),
        # Falsy values that are not strings were read as an absent media type.
        (body(mediaType=False), "spec.mediaType"),
        (body(mediaType=0), "spec.mediaType"),
        (body(mediaType={}), "spec.mediaType"),
        (body(mediaType=[]), "spec.mediaType"),
        # A regex's `$` also matches before a final newline: names must match whole.
        (body(namespace="team-a\n"), "spec.namespace"),
        (body(repository="app\n"), "spec.repository"),
        (body(tag="v2\n"), "spec.tag"),
        (body(digest=DIGEST + "\n"), "spec.digest"),
        (body(config="sha256:x"), "spec.config"),
        (body(config={"size": 1}), "spec.config.digest"),
        (body(config={"digest": CONFIG}), "spec.config.size"),
        (body(config={"digest": CONFIG, "size": "1"}), "spec.config.size"),
        (body(config={"digest": CONFIG, "size": True}), "spec.config.size"),
        (body(config={"digest": CONFIG, "size": -1}), "spec.config.size"),
        (body(layers={}), "spec.layers"),
        (body(layers="x"), "spec.layers"),
        (body(layers=[{"digest": LAYER, "size": 1}, 3]), "spec.layers[1]"),
        (body(layers=[{"digest": "", "size": 1}]), "spec.layers[0].digest"),
        (body(layers=[{"digest": LAYER, "size": 1.5}]), "spec.layers[0].size"),
        (body(layers=[{"digest": LAYER, "size": -2}]), "spec.layers[0].size"),
    ],
)
def test_malformed_bodies_name_the_field(review: Obj, field: str) -> None:
    with pytest.raises(BadPushReview) as raised:
        parse_push_review(encode(review), JSON)
    message = str(raised.value)
    assert re.match(re.escape(field) + r"[ :]", message), message


@pytest.mark.parametrize(
    ("review", "field"),
    [
        (body(layers=[{"digest": "sha256:" + "1" * 63, "size": 1}]), "spec.layers[0].digest"),
        (
            body(layers=[{"digest": LAYER, "size": 1}, {"digest": "x", "size": 1}]),
            "spec.layers[1].digest",
        ),
        (body(config={"digest": "sha256:" + "C" * 64, "size": 1}), "spec.config.digest"),
        (body(config={"digest": "sha512:" + "c" * 64, "size": 1}), "spec.config.digest"),
        (body(digest="sha256:" + "a" * 63), "spec.digest"),
        (body(digest="sha512:" + "a" * 64), "spec.digest"),
    ],
)
def test_a_digest_off_the_registered_encoding_is_refused_naming_the_field(
    review: Obj, field: str
) -> None:
    """Every digest a PushReview names follows the front door's rule (quota.names.is_digest):
    the two doors accept the same digests, and the registry would refuse these."""
    with pytest.raises(BadPushReview) as raised:
        parse_push_review(encode(review), JSON)
    message = str(raised.value)
    assert re.match(re.escape(field) + r"[ :]", message), message
    assert "digest" in message


@pytest.mark.parametrize(
    "digest", ["sha512:" + "b" * 128, "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564"]
)
def test_a_registered_or_unregistered_algorithm_in_its_grammar_is_accepted(digest: str) -> None:
    review = body(digest=digest, layers=[{"digest": digest, "size": 1}])
    assert parse_push_review(encode(review), JSON).push.digest == digest


@pytest.mark.parametrize("tag", ["v2", "latest", "_x", "1.0.0-rc.1", "a" * 128])
def test_valid_tags_are_accepted(tag: str) -> None:
    assert parse_push_review(encode(body(tag=tag)), JSON).push.tag == tag


@pytest.mark.parametrize("repository", ["app", "my-app", "a.b.c", "a" * 253, "0"])
def test_valid_repositories_are_accepted(repository: str) -> None:
    assert (
        parse_push_review(encode(body(repository=repository)), JSON).push.repository == repository
    )


@pytest.mark.parametrize("field", ["namespace", "repository", "digest"])
def test_a_missing_required_field_is_called_required(field: str) -> None:
    with pytest.raises(BadPushReview) as raised:
        parse_push_review(encode(body(**{field: _ABSENT})), JSON)
    assert str(raised.value) == f"spec.{field} is required"


def test_a_null_tag_is_a_push_by_digest() -> None:
    assert parse_push_review(encode(body(tag=None)), JSON).push.tag is None


# --- the cost limits, from real bodies --------------------------------------------------------


def layers(count: int) -> list[Obj]:
    """Distinct layer descriptors, as the registry sends them (no mediaType: the densest)."""
    return [{"digest": f"sha256:{index:064x}", "size": 2811478} for index in range(count)]


def test_layer_descriptors_are_no_denser_than_the_limits_assume() -> None:
    text = json.dumps(body(layers=layers(500)), separators=(",", ":"))
    cost = check_cost(text, JsonLimits(max_depth=100, max_values=10**9))
    assert cost.depth == 4
    assert len(text) / cost.values >= LAYER_BYTES_PER_VALUE


def test_a_body_at_the_size_cap_made_of_layers_passes() -> None:
    count = MAX_BODY_BYTES // len(json.dumps(layers(1)[0], separators=(",", ":")))
    while (
        len(raw := json.dumps(body(layers=layers(count)), separators=(",", ":"))) > MAX_BODY_BYTES
    ):
        count -= 1
    assert len(raw) > MAX_BODY_BYTES * 0.99
    assert len(parse_push_review(raw.encode(), JSON).push.manifest.layers) == count
