"""The front door's denials metric: one label per rule, read from the decision's cause."""

from __future__ import annotations

import pytest

from frontdoor.metrics import denial_label
from quota.decision import Cause


@pytest.mark.parametrize(
    ("cause", "label"),
    [
        (Cause.QUOTA_EXCEEDED, "quota"),
        (Cause.QUOTA_UNKNOWN, "quota"),
        (Cause.IMAGE_TAGS_LIMIT, "tags"),
        (Cause.IMAGES_LIMIT, "images"),
        (Cause.IMAGE_STORAGE_LIMIT, "size"),
        (Cause.IMAGE_SIZE_UNKNOWN, "size"),
        (Cause.REFUSED, "other"),
        (Cause.NOT_READY, "other"),
        (None, "other"),
    ],
)
def test_denials_are_labelled_by_their_rule(cause: Cause | None, label: str) -> None:
    assert denial_label(cause) == label


def test_every_label_is_one_the_metric_documents() -> None:
    assert {denial_label(cause) for cause in Cause} == {"size", "tags", "images", "quota", "other"}
