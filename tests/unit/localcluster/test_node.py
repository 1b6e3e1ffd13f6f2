"""The node's configuration files and host clean-up, without starting anything."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pytest

from localcluster import network, nodehost
from localcluster.cluster import ControlPlane
from localcluster.node import PAUSE_IMAGE, Node


@pytest.fixture
def node(tmp_path: Path) -> Node:
    return Node(ControlPlane(tmp_path / "cp", for_node=True), tmp_path / "node", bin_dir=tmp_path)


def test_containerd_runs_pods_without_cap_sys_resource_and_reads_registry_hosts(
    node: Node,
) -> None:
    config = tomllib.loads(node._containerd_config().read_text())
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True
    assert cri["sandbox_image"] == PAUSE_IMAGE
    assert cri["registry"]["config_path"] == str(node.hosts_dir)
    assert cri["cni"]["bin_dir"] == "/usr/lib/cni"
    assert config["grpc"]["address"] == str(node.containerd_socket)
    assert Path(config["root"]).is_relative_to(node.data_dir)


def test_the_pod_network_has_no_masquerade_and_stays_in_the_benchmarking_range(
    node: Node,
) -> None:
    node._write_cni_config()
    conflist = json.loads(next(node._cni_conf_dir().glob("*.conflist")).read_text())
    bridge = conflist["plugins"][0]
    assert bridge["ipMasq"] is False
    subnet = bridge["ipam"]["ranges"][0][0]["subnet"]
    assert subnet == network.POD_CIDR
    assert network.POD_CIDR.startswith("198.18.") and network.SERVICE_CIDR.startswith("198.18.")


def test_a_trusted_registry_gets_a_hosts_file_with_its_ca(node: Node) -> None:
    node.trust_registry("198.18.128.50:5000", b"PEM")
    directory = node.hosts_dir / "198.18.128.50:5000"
    hosts = tomllib.loads((directory / "hosts.toml").read_text())
    assert hosts["server"] == "https://198.18.128.50:5000"
    assert hosts["host"]["https://198.18.128.50:5000"]["ca"] == str(directory / "ca.crt")
    assert (directory / "ca.crt").read_bytes() == b"PEM"


def test_service_ips_stay_inside_the_service_range() -> None:
    assert network.service_ip(1) == network.KUBERNETES_SERVICE_IP == "198.18.128.1"
    with pytest.raises(ValueError):
        network.service_ip(255)


def test_only_links_into_our_pod_logs_are_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    links = tmp_path / "containers"
    links.mkdir()
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    os.symlink(ours / "a.log", links / "a.log")
    os.symlink(theirs / "b.log", links / "b.log")
    monkeypatch.setattr(nodehost, "CONTAINER_LOG_LINKS", links)
    nodehost.remove_container_log_links(ours)
    assert sorted(p.name for p in links.iterdir()) == ["b.log"]
