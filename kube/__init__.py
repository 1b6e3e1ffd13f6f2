"""Plumbing every process shares, in the manner of client-go: the API client, API errors
read by reason, a JSON adapter base, watch-backed informers, a work queue, a rate limiter,
reconcile runners, leader election, Events, listeners and X.509 helpers (``certs``).
Knows nothing of webhooks, the front door, reconcilers or rules, and holds no process's
flags or defaults.
"""
