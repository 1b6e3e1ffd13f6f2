"""Benchmarks against the real local control plane; each prints its figures."""
