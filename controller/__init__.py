"""The ``controller`` process: reconcilers that make the cluster match the rules.

``pullsecrets`` keeps each ServiceAccount's managed pull secret fresh; ``quotausage``
recounts ``alauda.io/imagestreams`` into ResourceQuota status; ``certificates`` keeps the
webhook's CA, serving certificate and caBundle (unless ``--manage-certificates=false``).
Each has a level-based ``reconciler`` and its ``wiring`` (informers, work queue, runner);
``main`` runs them behind leader election. Imports ``kube`` and ``quota``; never ``webhook``.
"""
