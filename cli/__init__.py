"""The ``image-registry-webhook`` command: parses flags and starts one of the two processes.

``serve`` runs the admission webhooks and the PushReview API (package ``webhook``);
``controller`` runs the reconcilers (package ``controller``). This is the only package
that knows both.
"""
