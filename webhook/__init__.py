"""The ``serve`` process: admission webhooks and the PushReview API over TLS.

``app`` builds the Flask app from one Blueprint per API (``admission``, ``pushreview``);
the handlers gather from watch caches, ask ``quota`` for a decision, then act (charge
quota, record an Event). ``main`` wires it up under gunicorn (``tlsserver``), with
self-registration (``registration``) and development certificates (``devcerts``).
Imports ``kube`` and ``quota``; never ``controller``.
"""
