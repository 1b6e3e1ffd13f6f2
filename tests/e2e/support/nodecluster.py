"""A control plane with one real node, for the suite that runs the service as pods."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from localcluster.cluster import ControlPlane
from localcluster.node import Node
from localcluster.waiting import wait_for


class NodeCluster:
    """The bridge, a control plane ``for_node`` and the node, started and stopped together."""

    def __init__(self, data_dir: Path, *, keep_data: bool = False) -> None:
        self.data_dir = data_dir
        self.cp = ControlPlane(data_dir / "cp", keep_data=keep_data, for_node=True)
        self.node = Node(self.cp, data_dir / "node")

    def start(self) -> None:
        try:
            Node.create_network()
            self.cp.start()
            self.node.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.node.stop()
        self.cp.stop()

    @property
    def kubeconfig(self) -> Path:
        return self.cp.kubeconfig

    def kubectl(self, *args: str, check: bool = True, input: str | None = None) -> str:
        """kubectl as cluster admin; stdout, or raise with stderr."""
        result = subprocess.run(
            [str(self.cp.kubectl()), f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True,
            text=True,
            input=input,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def get(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json"))

    def wait(self, condition: Any, *, timeout: float, what: str, interval: float = 0.5) -> Any:
        """Until ``condition()`` is truthy; a dead component fails at once, not at the
        deadline."""

        def check() -> Any:
            self.cp.check_running()
            self.node.check_running()
            return condition()

        return wait_for(check, timeout=timeout, interval=interval, what=what)

    def pod_events(self, namespace: str, pod: str) -> list[dict[str, Any]]:
        events = self.get("events", "-n", namespace, f"--field-selector=involvedObject.name={pod}")
        return list(events["items"])


def monotonic_since(start: float) -> float:
    return round(time.monotonic() - start, 1)
