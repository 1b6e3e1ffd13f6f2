"""The hot-path benchmark measures what it says: each body takes its intended path."""

from __future__ import annotations

import pytest

from bench import hotpath, plots
from bench.report import Report


@pytest.mark.parametrize("case", hotpath.cases(), ids=lambda case: case.name)
def test_each_body_is_answered_as_intended_by_both_apps(case: hotpath.Case) -> None:
    hotpath.check(hotpath.our_app(), case)
    status, data = hotpath.call(hotpath.bare_app([case.path]), hotpath.environ(case), case.body)
    assert status.startswith("200")
    assert b'"allowed":true' in data


def test_a_short_run_reports_one_ratio_per_body(monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[str] = []
    monkeypatch.setattr(Report, "write", lambda report: written.append(report.name))
    monkeypatch.setattr(plots, "bars", lambda *args, **kwargs: None)
    figures = hotpath.main(["--rounds", "2", "--requests", "2", "--only", "sa-create"])
    [figure] = figures
    assert figure.name == "sa-create CPU/request"
    assert figure.ratio is not None and figure.ratio > 0
    assert written == ["hotpath"]
