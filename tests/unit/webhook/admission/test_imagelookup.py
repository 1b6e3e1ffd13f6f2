"""ImageClient: one raw, bounded GET of a cluster-scoped Image; 404 is None, the rest fails."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import MaxRetryError, ReadTimeoutError

from quota.limitchecks import Unsized
from quota.names import IMAGE_GROUP
from quota.objects import Obj
from webhook.admission.imagelookup import ImageClient, ImageLookupFailed, can_name_image

DIGEST = "sha256:" + "ab" * 32
IMAGE: Obj = {"metadata": {"name": DIGEST}, "dockerImageMetadata": {"size": 10}}
IMAGE_JSON = json.dumps(IMAGE).encode()


@dataclass
class Raw:
    data: bytes


class FakeCustom:
    def __init__(self, answer: bytes | BaseException = IMAGE_JSON) -> None:
        self.answer = answer
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def get_cluster_custom_object(self, *args: Any, **kwargs: Any) -> Raw:
        self.calls.append((args, kwargs))
        if isinstance(self.answer, BaseException):
            raise self.answer
        return Raw(self.answer)


def test_an_image_is_read_raw_by_name_within_the_timeout() -> None:
    custom = FakeCustom()
    assert ImageClient(custom).read_image(DIGEST, timeout=0.7) == IMAGE
    assert custom.calls == [
        (
            (IMAGE_GROUP, "v1", "images", DIGEST),
            {"_preload_content": False, "_request_timeout": 0.7},
        )
    ]


def test_no_such_image_is_none() -> None:
    assert ImageClient(FakeCustom(ApiException(status=404))).read_image(DIGEST, timeout=1) is None


def test_an_image_read_live_is_sized_once_as_the_rules_take_it() -> None:
    assert ImageClient(FakeCustom()).image_size(DIGEST, timeout=1) == 10
    missing = ImageClient(FakeCustom(ApiException(status=404)))
    assert missing.image_size(DIGEST, timeout=1) is Unsized.NO_IMAGE
    unsized = ImageClient(FakeCustom(json.dumps({"metadata": {"name": DIGEST}}).encode()))
    assert unsized.image_size(DIGEST, timeout=1) is Unsized.NO_SIZE


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ApiException(status=403), "HTTP 403"),
        (ApiException(status=500), "HTTP 500"),
        (ReadTimeoutError(None, "/", "read timed out"), "ReadTimeoutError"),  # type: ignore[arg-type]
        (MaxRetryError(None, "/"), "MaxRetryError"),  # type: ignore[arg-type]
        (ConnectionResetError(), "ConnectionResetError"),
    ],
)
def test_other_failures_raise_a_lookup_failure_with_a_short_reason(
    error: BaseException, reason: str
) -> None:
    with pytest.raises(ImageLookupFailed) as raised:
        ImageClient(FakeCustom(error)).read_image(DIGEST, timeout=1)
    assert str(raised.value) == reason


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"text"'])
def test_an_answer_that_is_not_an_object_is_a_lookup_failure(body: bytes) -> None:
    with pytest.raises(ImageLookupFailed):
        ImageClient(FakeCustom(body)).read_image(DIGEST, timeout=1)


@pytest.mark.parametrize(
    "name",
    [
        DIGEST,
        "sha512:" + "0" * 128,
        "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
        "img-1",
        "a.b-c",
    ],
)
def test_digests_and_object_names_can_name_an_image(name: str) -> None:
    assert can_name_image(name)


@pytest.mark.parametrize(
    "name", ["", ".", "..", "../imagestreams", "a/b", "sha256:a/b", "Upper", "x" * 254, "a b"]
)
def test_other_strings_are_never_sent_and_name_no_image(name: str) -> None:
    custom = FakeCustom()
    assert can_name_image(name) is False
    assert ImageClient(custom).read_image(name, timeout=1) is None
    assert custom.calls == []
