"""``image-registry-webhook prune images``: old tag history, unreferenced Images and their
manifests removed, then (``--prune-registry``) the registry's own garbage collection."""
