"""A real node on this machine: containerd, the CNI bridge, kubelet, kube-proxy, scheduler.

``make dev`` and the end-to-end suite run pods here, so that the pull secrets, the front
door and the service's own manifests meet a real kubelet. The model is Kubernetes'
``hack/local-up-cluster.sh`` (kubelet on the host with a CRI runtime); the facts it took on
this kind of machine are in the README's "A real node" section. Everything lives under the
node's data directory, and :meth:`Node.stop` undoes what the parts did to the host
(``localcluster.nodehost``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import subprocess
from pathlib import Path

import tomli_w
import yaml

from localcluster import network, nodehost, pki, runnable
from localcluster.binaries import node_binaries_dir
from localcluster.cluster import (
    ControlPlane,
    ControlPlaneError,
    raise_if_exited,
    spawn,
    wait_started,
)
from localcluster.ports import free_port
from localcluster.processes import ManagedProcess
from localcluster.waiting import Timeout, wait_for

log = logging.getLogger(__name__)

CNI_BIN_DIR = Path("/usr/lib/cni")
"""Where Debian's containernetworking-plugins puts the plugins (not /opt/cni/bin)."""
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
"""The sandbox image kubelet 1.33 asks for (``kubeadm config images list``); containerd
1.6 would default to 3.6."""
IMAGE_NAMESPACE = "k8s.io"
"""containerd's namespace of the CRI plugin: images imported there are the kubelet's."""
READY_TIMEOUT = 120.0
"""kubelet reports Ready about 20 s after start here; the rest is margin for a busy CI."""
EVICTION_HARD = {"memory.available": "100Mi", "nodefs.available": "2%", "imagefs.available": "2%"}
"""Low eviction thresholds: a development machine's disk is often more than 85 % full,
and the default thresholds would taint the node with disk pressure and evict its pods."""


SOCKET_ROOT = Path("/run/registry-v2")
SOCKET_KEY_LENGTH = 12
"""Hex digits of the data directory's hash naming its socket directory under
``SOCKET_ROOT``: short, and one per data directory."""
SYNC_FREQUENCY = "10s"
"""The kubelet's ``syncFrequency`` (default 1m): how late a mounted Secret or ConfigMap
may show its object's change."""


class Node:
    """One node named ``pki.NODE_NAME`` for a :class:`ControlPlane` started ``for_node``."""

    def __init__(self, cp: ControlPlane, data_dir: Path, *, bin_dir: Path | None = None):
        self.cp = cp
        self.data_dir = data_dir
        self._bin_dir = bin_dir
        self.processes: list[ManagedProcess] = []
        self.host = nodehost.HostChanges(data_dir)

    @property
    def name(self) -> str:
        return pki.NODE_NAME

    def clean_leftovers(self) -> None:
        """What a killed run of the same data directory left: shims and mounts (a killed
        process undoes nothing)."""
        self.host.undo(containerd_socket=self.containerd_socket, kube_proxy=None)
        nodehost.remove_container_log_links(self.pod_logs_dir)
        shutil.rmtree(self.data_dir, ignore_errors=True)

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = node_binaries_dir()
        return self._bin_dir

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def socket_dir(self) -> Path:
        """containerd's sockets, in a short path of their own: a Unix socket's path holds
        at most 104 bytes here, which a test's temporary data directory exceeds."""
        digest = hashlib.sha256(str(self.data_dir.resolve()).encode()).hexdigest()
        return SOCKET_ROOT / digest[:SOCKET_KEY_LENGTH]

    @property
    def containerd_socket(self) -> Path:
        return self.socket_dir / "containerd.sock"

    @property
    def hosts_dir(self) -> Path:
        """containerd's registry host directories (``config_path``): one
        ``<host:port>/hosts.toml`` per registry the node trusts beyond the system's CAs."""
        return self.data_dir / "certs.d"

    @property
    def pod_logs_dir(self) -> Path:
        """Containers' logs (``kubectl logs`` reads them), not /var/log/pods."""
        return self.data_dir / "pod-logs"

    @property
    def kubelet_root(self) -> Path:
        return self.data_dir / "kubelet"

    @staticmethod
    def create_network() -> None:
        """The node's bridge with the gateway address, before the API server starts on it."""
        nodehost.create_bridge()

    def start(self) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.host.record()
            nodehost.create_cgroup_parent()
            self._start_containerd()
            self.import_image(self._pause_archive())
            self._start_kubelet()
            self._start_kube_proxy()
            self._start_scheduler()
            self.wait_ready(READY_TIMEOUT)
        except BaseException:
            self.stop()
            raise

    def _spawn(self, name: str, argv: list[str]) -> ManagedProcess:
        return spawn(self.processes, name, argv, self.log_dir)

    def check_running(self) -> None:
        raise_if_exited(self.processes)

    # containerd -----------------------------------------------------------------------

    def _containerd_config(self) -> Path:
        base = self.data_dir / "containerd"
        cri = {
            "sandbox_image": PAUSE_IMAGE,
            # The pause container asks for oom_score_adj -998; a negative value needs
            # CAP_SYS_RESOURCE, which root in this kind of machine does not have.
            "restrict_oom_score_adj": True,
            "stream_server_address": "127.0.0.1",
            "stream_server_port": "0",
            "containerd": {
                "snapshotter": "overlayfs",
                "default_runtime_name": "runc",
                "runtimes": {
                    "runc": {
                        "runtime_type": "io.containerd.runc.v2",
                        # containerd 1.6 cannot report its cgroup driver to the kubelet.
                        "options": {"SystemdCgroup": False},
                    }
                },
            },
            "cni": {
                "bin_dir": str(CNI_BIN_DIR),
                "conf_dir": str(self._cni_conf_dir()),
                "max_conf_num": 1,
            },
            "registry": {"config_path": str(self.hosts_dir)},
        }
        config = {
            "version": 2,
            "root": str(base / "root"),
            "state": str(base / "state"),
            "grpc": {"address": str(self.containerd_socket)},
            "ttrpc": {"address": str(self.socket_dir / "containerd.sock.ttrpc")},
            "plugins": {
                "io.containerd.grpc.v1.cri": cri,
                "io.containerd.internal.v1.opt": {"path": str(base / "opt")},
            },
            "disabled_plugins": [
                "io.containerd.snapshotter.v1.aufs",
                "io.containerd.snapshotter.v1.btrfs",
                "io.containerd.snapshotter.v1.devmapper",
                "io.containerd.snapshotter.v1.zfs",
            ],
        }
        path = base / "config.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(tomli_w.dumps(config))
        return path

    def _cni_conf_dir(self) -> Path:
        return self.data_dir / "cni" / "net.d"

    def _write_cni_config(self) -> None:
        conflist = {
            "cniVersion": "0.4.0",
            "name": "registry-v2",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": network.BRIDGE,
                    "isGateway": True,
                    # No uplink: nothing leaves the machine, so nothing is masqueraded.
                    "ipMasq": False,
                    # A pod that reaches its own Service comes back through the bridge.
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": network.POD_CIDR, "gateway": network.GATEWAY}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(self.data_dir / "cni" / "ipam"),
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }
        directory = self._cni_conf_dir()
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "10-registry-v2.conflist").write_text(json.dumps(conflist, indent=2))

    def _start_containerd(self) -> None:
        self._write_cni_config()
        self.hosts_dir.mkdir(parents=True, exist_ok=True)
        config = self._containerd_config()
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        process = self._spawn("containerd", ["containerd", f"--config={config}"])
        wait_started(process, self._containerd_serving, 60.0, "containerd's socket")

    def _containerd_serving(self) -> bool:
        if not self.containerd_socket.exists():
            return False
        return self.ctr("version", check=False).returncode == 0

    def ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``ctr`` against this node's containerd, in the kubelet's namespace."""
        return subprocess.run(
            ["ctr", f"--address={self.containerd_socket}", f"--namespace={IMAGE_NAMESPACE}", *args],
            check=check,
            capture_output=True,
            text=True,
        )

    def import_image(self, archive: Path) -> None:
        """Load an OCI archive into the kubelet's images, named by its index annotation."""
        self.ctr("images", "import", str(archive))

    def _pause_archive(self) -> Path:
        work = self.data_dir / "images"
        layout = work / "pause"
        shutil.rmtree(layout, ignore_errors=True)
        runnable.write_image(
            layout, self.bin_dir / "pause", entrypoint=["/pause"], name=PAUSE_IMAGE
        )
        return runnable.write_archive(layout, work / "pause.oci.tar")

    def trust_registry(self, host: str, ca_pem: bytes) -> None:
        """What a node-ca writes: ``host`` (``name:port``) is HTTPS signed by ``ca_pem``.
        containerd reads it at each pull; without it, containerd speaks plain HTTP to
        a loopback registry."""
        directory = self.hosts_dir / host
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "ca.crt").write_bytes(ca_pem)
        url = f"https://{host}"
        hosts = {"server": url, "host": {url: {"ca": str(directory / "ca.crt")}}}
        (directory / "hosts.toml").write_text(tomli_w.dumps(hosts))

    # kubelet, kube-proxy, scheduler -----------------------------------------------------

    def _start_kubelet(self) -> None:
        assert self.cp.pki is not None
        p = self.cp.pki
        cert, key = p.kubelet_serving
        self.kubelet_port = free_port()
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": network.GATEWAY,
            "port": self.kubelet_port,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": free_port(),
            "tlsCertFile": str(cert),
            "tlsPrivateKeyFile": str(key),
            # As clusters run it: the API server's client certificate, or a token the API
            # server reviews; what each may do, a SubjectAccessReview.
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(p.ca_cert)},
            },
            "authorization": {"mode": "Webhook"},
            "cgroupDriver": "cgroupfs",
            # Pods' cgroups under a root of our own: a stop removes exactly these.
            "cgroupRoot": nodehost.CGROUP_PARENT,
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "imageServiceEndpoint": f"unix://{self.containerd_socket}",
            "failSwapOn": False,
            "podLogsDir": str(self.pod_logs_dir),
            "clusterDomain": "cluster.local",
            "resolvConf": "",
            "evictionHard": EVICTION_HARD,
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            # A private image another namespace pulled is not run without this pod's own
            # credentials being checked by the registry (KEP-2535; alpha in 1.33). Images
            # loaded by hand (the pause and the service's images) are never re-checked.
            "featureGates": {"KubeletEnsureSecretPulledImages": True},
            "imagePullCredentialsVerificationPolicy": "NeverVerifyPreloadedImages",
            "serializeImagePulls": False,
            # Secret and ConfigMap volumes follow their objects on each pod sync: every
            # 10 s here instead of a minute, so a rotated CA reaches node-ca quickly.
            "syncFrequency": SYNC_FREQUENCY,
        }
        path = self.data_dir / "kubelet-config.yaml"
        path.write_text(yaml.safe_dump(config))
        kubeconfig = self.cp.component_kubeconfig("kubelet", f"system:node:{pki.NODE_NAME}")
        process = self._spawn(
            "kubelet",
            [
                str(self.bin_dir / "kubelet"),
                f"--config={path}",
                f"--kubeconfig={kubeconfig}",
                f"--root-dir={self.kubelet_root}",
                f"--cert-dir={self.data_dir / 'kubelet-pki'}",
                f"--hostname-override={pki.NODE_NAME}",
                f"--node-ip={network.GATEWAY}",
                "--v=1",
            ],
        )
        self.host.kubelet_started = True
        del process

    def _start_kube_proxy(self) -> None:
        kubeconfig = self.cp.component_kubeconfig("kube-proxy", "system:kube-proxy")
        self._spawn(
            "kube-proxy",
            [
                str(self.bin_dir / "kube-proxy"),
                f"--kubeconfig={kubeconfig}",
                f"--hostname-override={pki.NODE_NAME}",
                f"--cluster-cidr={network.POD_CIDR}",
                "--proxy-mode=iptables",
                f"--metrics-bind-address=127.0.0.1:{free_port()}",
                f"--healthz-bind-address=127.0.0.1:{free_port()}",
                # Leave the host's conntrack table size and its own OOM score alone: root
                # here has no CAP_SYS_RESOURCE.
                "--oom-score-adj=0",
                "--conntrack-max-per-core=0",
                "--v=1",
            ],
        )
        self.host.kube_proxy_started = True

    def _start_scheduler(self) -> None:
        kubeconfig = self.cp.component_kubeconfig("kube-scheduler", "system:kube-scheduler")
        self._spawn(
            "kube-scheduler",
            [
                str(self.bin_dir / "kube-scheduler"),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                "--leader-elect=false",
                "--v=1",
            ],
        )

    def _ready_or_dead(self) -> bool:
        """Ready, or a part has exited: :meth:`wait_ready` tells which at once."""
        return any(not p.running() for p in self.processes) or self._ready()

    def _ready(self) -> bool:
        out = subprocess.run(
            [
                str(self.cp.kubectl()),
                f"--kubeconfig={self.cp.kubeconfig}",
                "get",
                "node",
                pki.NODE_NAME,
                "-o",
                "json",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            return False
        node = json.loads(out.stdout)
        ready = any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in node.get("status", {}).get("conditions", [])
        )
        # The node-lifecycle controller lifts the not-ready taint a moment after Ready.
        tainted = any(
            t.get("key") == "node.kubernetes.io/not-ready"
            for t in node.get("spec", {}).get("taints", [])
        )
        return ready and not tainted

    def wait_ready(self, timeout: float) -> None:
        try:
            wait_for(
                self._ready_or_dead, timeout=timeout, interval=1.0, what=f"node {self.name} Ready"
            )
            self.check_running()
        except Timeout as err:
            kubelet = next((p for p in self.processes if p.name == "kubelet"), None)
            tail = kubelet.log_tail() if kubelet else ""
            raise ControlPlaneError(f"{err}\nkubelet log:\n{tail}") from None

    def stop(self) -> None:
        """Stop the parts, then undo what they did to the host; safe to call twice."""
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        self.host.undo(containerd_socket=self.containerd_socket, kube_proxy=self.bin_dir)
        nodehost.remove_container_log_links(self.pod_logs_dir)
        shutil.rmtree(self.socket_dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            SOCKET_ROOT.rmdir()  # the last node's: another run may still use it
