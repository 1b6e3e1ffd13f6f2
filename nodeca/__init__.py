"""The ``node-ca`` process: the registry CAs of ``image-registry-certificates`` mirrored
into each node's containerd ``certs.d``, as OpenShift's node-ca DaemonSet does."""
