"""What every over-TLS fuzz answer must be, whoever generated the request.

No 5xx, no traceback in the body or in the server's log, a status the OpenAPI document
lists for the path, a body that fits the document's schema for that status, and an
admission answer that echoes the review's uid.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import schemathesis
from schemathesis.core.failures import FailureGroup
from schemathesis.core.transport import Response

from tests.fuzz.bodies import ADMISSION_PATHS
from tests.fuzz.openapi import OPENAPI_PATH, load

TRACEBACK = "Traceback (most recent call last)"
METHOD_NOT_ALLOWED = 405


class LogWatch:
    """New text of a growing log file since the last look (thread-safe)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = path.stat().st_size
        self._lock = threading.Lock()

    def new_text(self) -> str:
        with self._lock, self._path.open("rb") as log:
            log.seek(self._offset)
            text = log.read()
            self._offset += len(text)
        return text.decode(errors="replace")


class Judge:
    """Checks one answer; ``problems`` lists what is wrong with it (none: a pass).

    With several senders, a traceback in the server log is blamed on the answer judged
    when it shows up, not necessarily the request that caused it: the count is what counts.
    """

    def __init__(self, server_log: Path) -> None:
        self.schema = schemathesis.openapi.from_path(OPENAPI_PATH)
        self.documented = {
            (method.upper(), path): {int(status) for status in operation["responses"]}
            for path, item in load()["paths"].items()
            for method, operation in item.items()
        }
        self.log = LogWatch(server_log)

    def _implicit(self, method: str, path: str) -> bool:
        if method == "HEAD":
            return ("GET", path) in self.documented
        return method == "OPTIONS"

    def problems(
        self,
        method: str,
        path: str,
        sent: Callable[[], Any],
        answer: requests.Response | Response,
    ) -> list[str]:
        """``sent`` decodes the request body; it is called only for a 200 admission answer
        (the server has parsed that body, so it decodes)."""
        response = Response.from_any(answer)
        status = response.status_code
        text = response.content.decode(errors="replace")
        where = f"{method} {path} -> {status}"
        found = []
        if status >= 500:
            found.append(f"{where}: a server error: {text[:200]!r}")
        if TRACEBACK in text:
            found.append(f"{where}: a traceback in the body")
        documented = self.documented.get((method, path))
        if self._implicit(method, path):
            pass  # Flask answers OPTIONS, and HEAD where there is a GET, by itself
        elif documented is None:
            if status != METHOD_NOT_ALLOWED:
                found.append(f"{where}: an undocumented method is not a 405")
        elif status not in documented:
            found.append(f"{where}: a status the OpenAPI document does not list")
        else:
            try:
                self.schema[path][method].validate_response(response)
            except FailureGroup as err:
                first = err.exceptions[0]
                found.append(f"{where}: {first.title}: {first.message}")
        if method == "POST" and path in ADMISSION_PATHS and status == 200:
            uid = sent()["request"]["uid"]
            echoed = json.loads(response.content)["response"]["uid"]
            if echoed != uid:
                found.append(f"{where}: uid {uid!r} answered as {echoed!r}")
        if TRACEBACK in self.log.new_text():
            found.append(f"{where}: a traceback in the server log")
        return found
