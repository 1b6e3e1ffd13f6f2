"""Kubernetes client construction: in-cluster config or a kubeconfig file."""

from __future__ import annotations

from kubernetes import client, config


class NoConfiguration(Exception):
    """No way to reach an API server: the given kubeconfig cannot be loaded, or, none
    given, neither the in-cluster config nor the default kubeconfig exists."""

    def __init__(self, kubeconfig: str | None, reason: str) -> None:
        super().__init__(reason)
        self.kubeconfig = kubeconfig


def load_configuration(kubeconfig: str | None = None) -> client.Configuration:
    """The client configuration of ``kubeconfig``, else the in-cluster config, else the
    default kubeconfig (``~/.kube/config``); raises ``NoConfiguration``. Cheap (files and
    environment only, no call), so a command can check it before it starts anything."""
    configuration = client.Configuration()
    try:
        if kubeconfig:
            config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        else:
            try:
                config.load_incluster_config(client_configuration=configuration)
            except config.ConfigException:
                config.load_kube_config(client_configuration=configuration)
    except (config.ConfigException, OSError) as err:
        raise NoConfiguration(kubeconfig, str(err)) from None
    return configuration


def api_client(kubeconfig: str | None = None, *, qps_pool: int = 16) -> client.ApiClient:
    """An ApiClient for ``kubeconfig``, else in-cluster config, else the default kubeconfig.

    ``qps_pool`` sizes the HTTP connection pool: one per concurrent caller.
    """
    configuration = load_configuration(kubeconfig)
    configuration.connection_pool_maxsize = qps_pool
    # Never let the client log request or response bodies: they carry tokens.
    configuration.debug = False
    return client.ApiClient(configuration)
