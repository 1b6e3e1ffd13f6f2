"""The registry's front door: an OCI Distribution proxy that holds pushes to the same limits."""
