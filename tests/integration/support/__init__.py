"""What integration tests share, so that no test module imports another.

One module per concern: ``cluster`` (the cluster under test and our server in it),
``objects`` (the policies and streams tests apply), ``pullsecrets``, ``pushreview``,
``registry`` (clients of the front door and the registry behind it), ``audit`` (the API
server's audit log against the manifests' RBAC), ``load`` and ``controller``.
``tests/unit/test_layout.py`` fails when a test module imports another.
"""
