"""Resource names and per-resource parsing/formatting."""

from decimal import Decimal

import pytest

from quota import resources as r
from quota.quantity import InvalidQuantity


def test_names_match_the_contract() -> None:
    assert r.LIMIT_TYPE_IMAGE == "alauda.io/Image"
    assert r.LIMIT_TYPE_IMAGE_STREAM == "alauda.io/ImageStream"
    assert r.RESOURCE_STORAGE == "storage"
    assert r.RESOURCE_IMAGE_TAGS == "alauda.io/image-tags"
    assert r.RESOURCE_IMAGES == "alauda.io/images"
    assert r.RESOURCE_IMAGESTREAMS == "alauda.io/imagestreams"
    assert r.LIMIT_TYPE_RESOURCES == {
        "alauda.io/Image": ("storage",),
        "alauda.io/ImageStream": ("alauda.io/image-tags", "alauda.io/images"),
    }
    assert r.LIMIT_KEYS == (
        ("alauda.io/Image", "storage"),
        ("alauda.io/ImageStream", "alauda.io/image-tags"),
        ("alauda.io/ImageStream", "alauda.io/images"),
    )
    assert r.STREAM_TAGS.type == "alauda.io/ImageStream"
    assert r.STREAM_TAGS.resource == "alauda.io/image-tags"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("alauda.io/Image", True),
        ("alauda.io/gpu", True),
        ("alauda.io", False),
        ("xalauda.io/images", False),
        ("count/imagestreams.image.alauda.io", False),
        ("storage", False),
        ("Alauda.io/images", False),
        (None, False),
        (3, False),
    ],
)
def test_is_alauda_name(name: object, expected: bool) -> None:
    assert r.is_alauda_name(name) is expected


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ("alauda.io/image-tags", True),
        ("alauda.io/images", True),
        ("alauda.io/imagestreams", True),
        ("storage", False),
        ("cpu", False),
    ],
)
def test_is_count_resource(resource: str, expected: bool) -> None:
    assert r.is_count_resource(resource) is expected


def test_parse_resource_value_requires_whole_counts_but_not_whole_bytes() -> None:
    assert r.parse_resource_value("storage", "1.1Gi") == Decimal("1181116006.4")
    assert r.parse_resource_value("alauda.io/images", "20") == 20
    with pytest.raises(InvalidQuantity, match="must be an integer"):
        r.parse_resource_value("alauda.io/images", "1.5")
    with pytest.raises(InvalidQuantity, match="must be greater than or equal to 0"):
        r.parse_resource_value("storage", "-1Gi")


@pytest.mark.parametrize(
    ("resource", "value", "expected"),
    [
        ("storage", 1073741824, "1Gi"),
        ("storage", Decimal(1610612736), "1536Mi"),
        ("alauda.io/image-tags", 2048, "2048"),
        ("alauda.io/images", Decimal(21), "21"),
        ("alauda.io/imagestreams", 1024, "1024"),
    ],
)
def test_format_resource_value(resource: str, value: int | Decimal, expected: str) -> None:
    assert r.format_resource_value(resource, value) == expected
