"""Kubernetes adapters of the quota rules: the admission-time charge and usage reconciler."""
