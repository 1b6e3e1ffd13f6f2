"""The admission webhooks: AdmissionReview parsing and rendering, the Blueprint, and one
handler per endpoint (``serviceaccounts``, ``imagestreams``, ``policies``)."""
