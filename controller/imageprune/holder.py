"""Who set the registry read-only for a garbage collection, written on the Config itself,
so that two pruners never restore each other's ``readOnly`` and a killed one's switch is
put back by the next.

``readOnly`` alone cannot say who set it: run A saves "unset", run B saves ``true`` (A's),
A restores "unset" during B's collection, B restores ``true`` for ever. So the pruner
writes, in the same patch as ``spec.readOnly: true`` and over the resourceVersion it read,
the annotation ``HOLDER_ANNOTATION``: its id, when its hold expires, and the value it will
put back. A run refuses to collect while another live holder has the switch, takes over an
expired hold (keeping the value that hold saved, the one from before any collection), and
restores only while the annotation still names it. Pure: the I/O is ``collect``'s.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from quota.objects import Obj, mapping, metadata

HOLDER_ANNOTATION: Final = "imageregistry.operator.alauda.io/read-only-holder"
"""On ``configs.imageregistry.operator.alauda.io/cluster`` while a collection holds it."""


@dataclass(frozen=True)
class Hold:
    holder: str
    """Who set ``readOnly`` (host, process and a random part: unique per run)."""
    expires: datetime
    saved: bool | None
    """``spec.readOnly`` before the first collection set it (None: unset)."""

    def to_json(self) -> str:
        expires = self.expires.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return json.dumps({"holder": self.holder, "expires": expires, "saved": self.saved})


class Held(Exception):
    """Another run's live hold: this run must not collect."""


def current(config: Obj) -> Hold | None:
    """The hold the Config carries; None when it has none, or one no run could have
    written (then it is as good as expired: nobody will restore from it)."""
    text = mapping(metadata(config).get("annotations")).get(HOLDER_ANNOTATION)
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text)
        expires = datetime.strptime(value["expires"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        holder, saved = value["holder"], value["saved"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(holder, str) or not (saved is None or isinstance(saved, bool)):
        return None
    return Hold(holder, expires, saved)


def take(config: Obj, holder: str, now: datetime, lease: timedelta) -> tuple[Hold, Obj]:
    """The hold this run takes, and the merge patch that takes it (over the
    resourceVersion read); ``Held`` while another run's hold is live."""
    held = current(config)
    if held is not None and held.holder != holder and held.expires > now:
        raise Held(
            f"another collection ({held.holder}) holds the registry read-only until "
            f"{held.expires:%Y-%m-%dT%H:%M:%SZ}; the registry is not collected by this run"
        )
    if held is not None:
        saved = held.saved  # an expired hold's run never restored: its value is the original
    else:
        was = mapping(config.get("spec")).get("readOnly")
        saved = was if isinstance(was, bool) else None
    hold = Hold(holder, now + lease, saved)
    patch = {
        "metadata": {
            "resourceVersion": metadata(config).get("resourceVersion"),
            "annotations": {HOLDER_ANNOTATION: hold.to_json()},
        },
        "spec": {"readOnly": True},
    }
    return hold, patch


def release(config: Obj, holder: str) -> Obj | None:
    """The merge patch that puts ``readOnly`` back and drops the hold, over the
    resourceVersion read; None when the hold is not this run's (never taken, or taken
    over after it expired): then the switch is not ours to touch."""
    held = current(config)
    if held is None or held.holder != holder:
        return None
    return {
        "metadata": {
            "resourceVersion": metadata(config).get("resourceVersion"),
            "annotations": {HOLDER_ANNOTATION: None},
        },
        "spec": {"readOnly": held.saved},
    }
