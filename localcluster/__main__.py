"""``python -m localcluster``: the dev stack in the foreground until Ctrl-C (``make dev``)."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from localcluster import devstate, network
from localcluster.binaries import REPO_ROOT
from localcluster.cluster import ControlPlane
from localcluster.node import Node
from localcluster.ocitools import crane_binary
from localcluster.stack import Stack


def _metrics_urls(stack: Stack) -> list[str]:
    urls = list(stack.webhook_metrics_urls)
    urls += [f"http://127.0.0.1:{p.ports['metrics']}/metrics" for p in stack.controllers]
    if stack.frontdoor is not None:
        urls.append(stack.frontdoor.metrics_url)
    return urls


def _frontdoor_banner(stack: Stack) -> str:
    door = stack.frontdoor
    if door is None:
        return ""
    return (
        f"  registry: {door.host} (our front door, CA {door.ca_file}) before a CNCF "
        f"registry at {door.registry.host}; a route of configs/cluster, so every pull "
        "secret works against it\n"
        f"  crane: {crane_binary()} (README: The registry's front door)\n"
    )


def _node_banner(node: Node | None) -> str:
    if node is None:
        return "  node: none (--no-node): pods stay Pending\n"
    return (
        f"  node: {node.name} (kubelet, containerd at {node.containerd_socket}); pods on "
        f"{network.POD_CIDR}, Services on {network.SERVICE_CIDR}, on a bridge with no uplink\n"
        f"  node logs: {node.log_dir}\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m localcluster")
    parser.add_argument("--dir", type=Path, default=REPO_ROOT / ".local", help="state directory")
    parser.add_argument("--no-controller", action="store_true", help="run the webhook server only")
    parser.add_argument(
        "--no-frontdoor", action="store_true", help="no registry and no front door before it"
    )
    parser.add_argument(
        "--no-node",
        action="store_true",
        help="no node (containerd, kubelet, kube-proxy, scheduler): pods stay Pending",
    )
    args = parser.parse_args()
    with_node = not args.no_node
    if with_node and os.geteuid() != 0:
        print(
            "localcluster: the node (containerd, kubelet) needs root; run as root, or pass "
            "--no-node (make dev DEV_ARGS=--no-node) for the control plane and the service only",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    state: Path = args.dir
    data_dir = state / "cluster"
    # Every run starts from an empty cluster: a stale etcd from a killed run is no state
    # anyone wants back, and reusing it would hide bugs of a fresh start.
    shutil.rmtree(data_dir, ignore_errors=True)
    kubeconfig = state / "kubeconfig"
    state_file = state / devstate.STATE_FILE
    state_file.unlink(missing_ok=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    cp = ControlPlane(data_dir, kubeconfig_path=kubeconfig, for_node=with_node)
    stack = Stack(cp, with_controller=not args.no_controller, with_frontdoor=not args.no_frontdoor)
    node = Node(cp, state / "node") if with_node else None
    try:
        print(
            "starting the local control plane (a first run builds it: about 15 min on 2 cores, "
            "up to 30; README)"
        )
        if node is not None:
            node.clean_leftovers()
            Node.create_network()
        stack.start()
        if node is not None:
            print("starting the node (containerd, kubelet, kube-proxy, kube-scheduler)", flush=True)
            node.start()
            if stack.frontdoor is not None:
                # What the node-ca DaemonSet does in a cluster: the node trusts the registry.
                node.trust_registry(stack.frontdoor.host, stack.frontdoor.ca_file.read_bytes())
        if stack.frontdoor is not None:
            # For developer tools (python -m localcluster.attacks): where the stack is.
            devstate.write(state_file, devstate.of(stack))
        print(
            "\nRegistry v2 policy service is up.\n"
            f"  export KUBECONFIG={kubeconfig}\n"
            f"  kubectl: {cp.kubectl()} (or the machine's kubectl)\n"
            f"  webhook: {stack.webhook_url} ({len(stack.webhooks)} replicas), "
            f"controller: {len(stack.controllers)} replicas; restarted when they exit\n"
            f"  logs: {cp.log_dir}\n"
            f"  metrics: {', '.join(_metrics_urls(stack))}\n"
            f"{_frontdoor_banner(stack)}"
            f"{_node_banner(node)}"
            "Ctrl-C stops everything.",
            flush=True,
        )
        # The stack's supervisor restarts a replica that exits, and says so here.
        while not stop.wait(1.0):
            cp.check_running()
            if node is not None:
                node.check_running()
    except Exception as err:
        print(f"localcluster: {err}", file=sys.stderr)
        return 1
    finally:
        print("stopping...", flush=True)
        state_file.unlink(missing_ok=True)
        if node is not None:
            node.stop()
        stack.stop()
        print("stopped; no process left running.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
