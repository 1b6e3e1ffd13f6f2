"""Plumbing both processes share, in the manner of client-go: the API client, watch-backed
informers, a work queue, a rate limiter, reconcile runners, leader election, Events,
X.509 helpers (``certs``), and the settings both processes read. Knows nothing of
webhooks, reconcilers or rules.
"""
