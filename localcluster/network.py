"""The addresses of the local cluster's pod and Service networks.

Both live only on this machine: a bridge with no uplink, nothing masqueraded outward, in
the benchmarking range 198.18.0.0/15 (RFC 2544), which no real network routes, so they
cannot collide with the machine's own networks or a VPN.
"""

from __future__ import annotations

import ipaddress

POD_CIDR = "198.18.0.0/24"
"""Pods' addresses, on the node's bridge (host-local IPAM)."""
GATEWAY = "198.18.0.1"
"""The bridge's own address: the node's InternalIP, and where the API server listens when a
node runs, so that pods reach it (the ``kubernetes`` Service's endpoint)."""
BRIDGE = "rv2br0"
"""The node's bridge (at most 15 characters, the kernel's IFNAMSIZ)."""
SERVICE_CIDR = "198.18.128.0/24"
"""ClusterIPs (kube-apiserver ``--service-cluster-ip-range``); kube-proxy programs them."""


def service_ip(offset: int) -> str:
    """The ``offset``-th address of the Service range (1 is the ``kubernetes`` Service)."""
    network = ipaddress.ip_network(SERVICE_CIDR)
    if not 0 < offset < network.num_addresses - 1:
        raise ValueError(f"offset {offset} outside {SERVICE_CIDR}")
    return str(network.network_address + offset)


KUBERNETES_SERVICE_IP = service_ip(1)
