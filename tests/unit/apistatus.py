"""API errors shaped as kube-apiserver sends them: a ``Status`` body with its reason.

Fakes raise these so that code under test reads them through ``kube.apierrors`` the way it
reads the real server's: a bare ``ApiException(status=409)`` could be either a create that
lost a race or a stale update, and the code must tell them apart by the body.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from kubernetes.client.exceptions import ApiException

from kube import apierrors

CODES = {
    apierrors.NOT_FOUND: HTTPStatus.NOT_FOUND,
    apierrors.ALREADY_EXISTS: HTTPStatus.CONFLICT,
    apierrors.CONFLICT: HTTPStatus.CONFLICT,
    apierrors.INVALID: HTTPStatus.UNPROCESSABLE_ENTITY,
    apierrors.FORBIDDEN: HTTPStatus.FORBIDDEN,
    apierrors.GONE: HTTPStatus.GONE,
    apierrors.EXPIRED: HTTPStatus.GONE,
}
"""The code apimachinery's constructors (``NewNotFound``, ``NewConflict``, ...) give each."""


def api_error(reason: str, message: str = "", **details: Any) -> ApiException:
    """The error the client raises for a ``Status`` of ``reason`` (with ``details``)."""
    code = CODES[reason]
    err = ApiException(status=int(code), reason=code.phrase)
    err.body = json.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "details": details,
            "code": int(code),
        }
    )
    return err


def namespace_terminating(namespace: str, kind: str = "secrets") -> ApiException:
    """The namespace lifecycle admission plugin's refusal of a create (``admission.go``)."""
    return api_error(
        apierrors.FORBIDDEN,
        f'{kind} "x" is forbidden: unable to create new content in namespace {namespace} '
        "because it is being terminated",
        kind=kind,
        causes=[
            {
                "reason": apierrors.NAMESPACE_TERMINATING_CAUSE,
                "message": f"namespace {namespace} is being terminated",
                "field": "metadata.namespace",
            }
        ],
    )
