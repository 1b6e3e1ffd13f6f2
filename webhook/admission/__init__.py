"""AdmissionReview plumbing shared by every admission endpoint: parsing, decisions, responses."""

from webhook.admission.review import (
    ADMISSION_API_VERSION,
    AdmissionRequest,
    BadReview,
    Decision,
    parse_review,
    render_response,
)

__all__ = [
    "ADMISSION_API_VERSION",
    "AdmissionRequest",
    "BadReview",
    "Decision",
    "parse_review",
    "render_response",
]
