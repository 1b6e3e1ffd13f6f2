"""Placeholder validation for endpoints whose rules have not landed yet."""

from __future__ import annotations

from webhook.admission import AdmissionRequest, Decision


def allow(request: AdmissionRequest) -> Decision:
    return Decision.allow()
