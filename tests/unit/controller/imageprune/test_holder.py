"""The hold on the read-only switch: taken over the resourceVersion read, refused while
another run's is live, taken over when expired, released only by its holder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller.imageprune.holder import HOLDER_ANNOTATION, Held, Hold, current, release, take

NOW = datetime(2026, 12, 8, tzinfo=UTC)
LEASE = timedelta(minutes=30)


def config(read_only: object = None, hold: Hold | str | None = None) -> dict[str, Any]:
    annotations = (
        {} if hold is None else {HOLDER_ANNOTATION: getattr(hold, "to_json", lambda: hold)()}
    )
    spec = {} if read_only is None else {"readOnly": read_only}
    return {"metadata": {"resourceVersion": "7", "annotations": annotations}, "spec": spec}


def test_taking_sets_read_only_with_the_hold_over_the_version_read() -> None:
    hold, patch = take(config(), "me", NOW, LEASE)
    assert hold == Hold("me", NOW + LEASE, None)
    assert patch == {
        "metadata": {"resourceVersion": "7", "annotations": {HOLDER_ANNOTATION: hold.to_json()}},
        "spec": {"readOnly": True},
    }


@pytest.mark.parametrize("was", [True, False])
def test_the_value_before_the_collection_is_saved(was: bool) -> None:
    assert take(config(was), "me", NOW, LEASE)[0].saved is was


def test_another_runs_live_hold_is_refused() -> None:
    live = Hold("other", NOW + timedelta(seconds=1), None)
    with pytest.raises(Held, match=r"\(other\) holds the registry read-only until"):
        take(config(True, live), "me", NOW, LEASE)


def test_an_expired_hold_is_taken_over_with_the_value_it_saved() -> None:
    expired = Hold("killed", NOW, False)
    assert take(config(True, expired), "me", NOW, LEASE)[0].saved is False


def test_a_hold_no_run_wrote_counts_as_none() -> None:
    assert current(config(True, "not json")) is None
    assert current(config(True, '{"holder": 1, "expires": "x", "saved": null}')) is None


def test_only_the_holder_releases_and_puts_back_what_was_saved() -> None:
    mine = config(True, Hold("me", NOW, None))
    assert release(mine, "other") is None
    assert release(config(True), "me") is None
    assert release(mine, "me") == {
        "metadata": {"resourceVersion": "7", "annotations": {HOLDER_ANNOTATION: None}},
        "spec": {"readOnly": None},
    }
