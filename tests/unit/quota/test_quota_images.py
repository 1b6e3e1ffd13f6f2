from __future__ import annotations

from typing import Any

import pytest

from quota.images import recorded_image_size


@pytest.mark.parametrize(
    ("image", "size"),
    [
        (None, None),
        ({}, None),
        ({"dockerImageMetadata": {"size": 42}}, 42),
        ({"dockerImageMetadata": {"size": -1}}, None),
        ({"dockerImageMetadata": {"size": True}}, None),
        (
            {
                "dockerImageConfig": {"digest": "sha256:c", "size": 10},
                "dockerImageLayers": [
                    {"name": "sha256:a", "size": 100},
                    {"name": "sha256:a", "size": 100},
                    {"name": "sha256:b", "size": 5},
                ],
                "dockerImageMetadata": {"size": 1},
            },
            115,
        ),
        ({"dockerImageLayers": [{"name": "sha256:a", "size": 7}]}, 7),
        ({"dockerImageLayers": [{"name": "sha256:a"}]}, None),
        ({"dockerImageLayers": ["x"]}, None),
    ],
)
def test_recorded_image_size(image: Any, size: int | None) -> None:
    assert recorded_image_size(image) == size
