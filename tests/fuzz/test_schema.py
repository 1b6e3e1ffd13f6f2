"""Schemathesis, from ``docs/openapi.yaml``, against the real server over TLS.

Valid requests and requests that break the document in one place (positive and negative
generation) go to every route of the gunicorn server of ``tests.fuzz.server``. Besides
schemathesis' own checks (no 5xx; status, content type, headers and body as documented; a
body that breaks the document refused, one that fits it accepted; a 405 with ``Allow``;
the bearer token not ignored), every answer passes ``tests.fuzz.judge``: no traceback in
the body or the server log, and an admission answer echoes the uid.
"""

from __future__ import annotations

import os
from typing import Any, Final

import pytest
import schemathesis
from schemathesis import APIOperation, CheckContext, GenerationMode
from schemathesis import Case as GenericCase
from schemathesis.core.transport import Response

from tests.fuzz.fakes import TOKEN
from tests.fuzz.judge import Judge
from tests.fuzz.openapi import OPENAPI_PATH
from tests.fuzz.server import ServerProcess

EXAMPLES_PER_ROUTE: Final = int(os.environ.get("FUZZ_SCHEMA_EXAMPLES", "50"))
"""Cases per route and mode in ``make test``: about 400 requests in all, ~15 s here."""

Case = GenericCase[APIOperation[Any, Any, Any, Any]]

schema = schemathesis.openapi.from_path(OPENAPI_PATH)
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES_PER_ROUTE
)


@pytest.fixture(scope="module")
def judge(fuzz_server: ServerProcess) -> Judge:
    return Judge(fuzz_server.log_path)


@schema.parametrize()
def test_every_route_answers_as_documented(
    case: Case, fuzz_server: ServerProcess, judge: Judge
) -> None:
    def judged(ctx: CheckContext, response: Response, case: Case) -> None:
        problems = judge.problems(case.method, case.path, lambda: case.body, response)
        assert not problems, "\n".join(problems)

    case.call_and_validate(
        base_url=fuzz_server.url,
        verify=fuzz_server.ca_file,
        headers={"Authorization": f"Bearer {TOKEN}"},
        additional_checks=[judged],
    )
