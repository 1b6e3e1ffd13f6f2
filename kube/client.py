"""Kubernetes client construction: in-cluster config or a kubeconfig file."""

from __future__ import annotations

from kubernetes import client, config


def api_client(kubeconfig: str | None = None, *, qps_pool: int = 16) -> client.ApiClient:
    """An ApiClient for ``kubeconfig``, else in-cluster config, else the default kubeconfig.

    ``qps_pool`` sizes the HTTP connection pool: one per concurrent caller.
    """
    configuration = client.Configuration()
    if kubeconfig:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            config.load_kube_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = qps_pool
    # Never let the client log request or response bodies: they carry tokens.
    configuration.debug = False
    return client.ApiClient(configuration)
