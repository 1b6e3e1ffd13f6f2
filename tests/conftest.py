"""Test-wide set-up: the cluster marker, and Hypothesis profiles for CI and developers.

CI (``CI=true``) runs the ``ci`` profile: derandomized, so a red run is red again on the
same commit, with the reproduction blob printed. Developers get fresh random examples
(``dev``); ``HYPOTHESIS_PROFILE`` picks either. Neither has a per-example deadline: on a
2-core machine shared with a control plane, timing says nothing about correctness.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

_INTEGRATION = Path(__file__).parent / "integration"

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)


def pytest_report_header() -> str:
    return f"hypothesis profile: {settings.get_current_profile_name()}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _INTEGRATION in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.cluster)
