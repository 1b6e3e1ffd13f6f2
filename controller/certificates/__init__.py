"""Built-in certificates for the webhook: a CA and a serving certificate kept in a Secret,
renewed and rotated without an outside issuer, and the caBundle that makes the API server
trust them.

``rules`` decides (pure), ``material`` reads and writes the Secret's certificates,
``reconciler`` carries a decision out, ``wiring`` runs it behind leader election.
"""
