"""The ``controller`` command: reconcilers for pull secrets and quota usage."""

from __future__ import annotations

from webhook.settings import Settings


def run_controller(settings: Settings) -> int:
    raise SystemExit("the controller command arrives with the pull-secret reconciler")
