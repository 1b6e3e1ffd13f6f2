"""What a node does to its host, and how a clean stop takes it back.

A kubelet, containerd and kube-proxy on the host change more than their own directories:
sysctls, iptables chains, ``kubepods`` cgroups at each hierarchy's root, a bind mount of
the kubelet's root on itself, network namespaces under ``/run/netns``, CNI results under
``/var/lib/cni``. A developer's machine must look the same after ``make dev`` as before,
so :class:`HostChanges` records what it will restore before the node starts, and
:meth:`HostChanges.undo` takes every change back, best effort and in order (processes
first: a mount or a cgroup in use cannot go).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
from pathlib import Path

from localcluster import network

log = logging.getLogger(__name__)

SYSCTLS = (
    "net/ipv4/ip_forward",  # the bridge plugin's isGateway
    "vm/overcommit_memory",  # the kubelet's protectKernelDefaults=false defaults
    "kernel/panic",
    "kernel/panic_on_oops",
)
"""The sysctls the node's parts set, restored at stop."""
LEFTOVER_CHAINS = (
    "KUBE-FIREWALL",
    "KUBE-KUBELET-CANARY",
    "KUBE-IPTABLES-HINT",
    "KUBE-PROXY-CANARY",
    "KUBE-MARK-MASQ",
)
"""iptables chains the kubelet creates, and those ``kube-proxy --cleanup`` leaves."""
IPTABLES_TABLES = ("filter", "nat", "mangle")
NETNS_DIR = Path("/run/netns")
CNI_RESULTS = Path("/var/lib/cni/results")
CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTAINER_LOG_LINKS = Path("/var/log/containers")
CGROUP_PARENT = "/registry-v2"
"""The kubelet's ``cgroupRoot``: its ``kubepods`` tree goes under it, apart from any other
kubelet's on the machine."""
KUBEPODS = CGROUP_PARENT.strip("/")


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False)


def create_bridge() -> None:
    """The bridge the CNI plugin attaches pods to, made first so that the API server can
    listen on its gateway address; no uplink is ever added to it."""
    if _run("ip", "link", "show", network.BRIDGE).returncode != 0:
        _check(_run("ip", "link", "add", network.BRIDGE, "type", "bridge"))
    prefix = network.POD_CIDR.split("/")[1]
    address = _run("ip", "-o", "addr", "show", "dev", network.BRIDGE)
    if f"{network.GATEWAY}/" not in address.stdout:
        _check(_run("ip", "addr", "add", f"{network.GATEWAY}/{prefix}", "dev", network.BRIDGE))
    _check(_run("ip", "link", "set", network.BRIDGE, "up"))


def delete_bridge() -> None:
    _run("ip", "link", "delete", network.BRIDGE)


def _check(result: subprocess.CompletedProcess[str]) -> None:
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(result.args)}: {result.stderr.strip()}")


def create_cgroup_parent() -> None:
    """The kubelet's ``cgroupRoot`` in every hierarchy; it must exist before the kubelet
    starts. A v1 cpuset cgroup starts with no CPUs or memory nodes, so it takes its
    parent's."""
    for hierarchy in _hierarchies():
        directory = hierarchy / KUBEPODS
        directory.mkdir(exist_ok=True)
        for name in ("cpuset.cpus", "cpuset.mems"):
            parent_value = hierarchy / name
            if parent_value.exists() and not (directory / name).read_text().strip():
                (directory / name).write_text(parent_value.read_text())


def remove_container_log_links(pod_logs_dir: Path) -> None:
    """The kubelet links every container's log into /var/log/containers (a fixed path, for
    log shippers); remove the links that point into ``pod_logs_dir``."""
    if not CONTAINER_LOG_LINKS.is_dir():
        return
    prefix = str(pod_logs_dir)
    for link in CONTAINER_LOG_LINKS.iterdir():
        with contextlib.suppress(OSError):
            if link.is_symlink() and os.readlink(link).startswith(prefix):
                link.unlink()


class HostChanges:
    """The host's state before a node ran, and the undoing of what the node changed."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.sysctls: dict[str, str] = {}
        self.netns_before: set[str] = set()
        self.cni_results_before: set[str] = set()
        self.kubelet_started = False
        self.kube_proxy_started = False

    def record(self) -> None:
        for name in SYSCTLS:
            with contextlib.suppress(OSError):
                self.sysctls[name] = (Path("/proc/sys") / name).read_text().strip()
        self.netns_before = set(os.listdir(NETNS_DIR)) if NETNS_DIR.is_dir() else set()
        self.cni_results_before = set(os.listdir(CNI_RESULTS)) if CNI_RESULTS.is_dir() else set()

    def undo(self, *, containerd_socket: Path, kube_proxy: Path | None) -> None:
        self._kill_shims(containerd_socket)
        self._kill_pods()
        self._unmount_under(self.data_dir)
        self._remove_netns()
        if self.kube_proxy_started and kube_proxy is not None:
            _run(str(kube_proxy / "kube-proxy"), "--cleanup")
        if self.kubelet_started or self.kube_proxy_started:
            self._remove_leftover_chains()
        self._remove_cni_results()
        delete_bridge()
        for name, value in self.sysctls.items():
            with contextlib.suppress(OSError):
                (Path("/proc/sys") / name).write_text(value)
        self._remove_kubepods_cgroups()

    def _kill_shims(self, socket: Path) -> None:
        """containerd's shims outlive it (they keep containers running across restarts)."""
        needle = str(socket).encode()
        for pid in _pids():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"containerd-shim" in cmdline and needle in cmdline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def _kill_pods(self) -> None:
        """Every process in a pod's cgroup, found in any hierarchy."""
        for hierarchy in _hierarchies():
            root = hierarchy / KUBEPODS
            if not root.is_dir():
                continue
            for procs in root.rglob("cgroup.procs"):
                with contextlib.suppress(OSError):
                    for line in procs.read_text().split():
                        with contextlib.suppress(ProcessLookupError, ValueError):
                            os.kill(int(line), signal.SIGKILL)

    def _unmount_under(self, directory: Path) -> None:
        """Secret volumes, overlay roots, the kubelet's bind mount of its root on itself:
        deepest first, lazily, so a straggler never blocks the rest."""
        prefix = str(directory.resolve())
        mounts = []
        with contextlib.suppress(OSError):
            for line in Path("/proc/self/mountinfo").read_text().splitlines():
                point = line.split()[4].replace("\\040", " ")
                if point == prefix or point.startswith(prefix + "/"):
                    mounts.append(point)
        for point in sorted(set(mounts), key=len, reverse=True):
            _run("umount", "--lazy", point)

    def _remove_netns(self) -> None:
        if not NETNS_DIR.is_dir():
            return
        for name in set(os.listdir(NETNS_DIR)) - self.netns_before:
            if name.startswith("cni-"):
                path = NETNS_DIR / name
                _run("umount", "--lazy", str(path))
                with contextlib.suppress(OSError):
                    path.unlink()

    def _remove_leftover_chains(self) -> None:
        for command in ("iptables", "ip6tables"):
            for table in IPTABLES_TABLES:
                rules = _run(command, "-t", table, "-S").stdout.splitlines()
                for rule in rules:
                    words = shlex.split(rule)
                    if words[:1] == ["-A"] and any(
                        f"-j {chain}" in rule for chain in LEFTOVER_CHAINS
                    ):
                        _run(command, "-t", table, "-D", *words[1:])
                for chain in LEFTOVER_CHAINS:
                    _run(command, "-t", table, "-F", chain)
                    _run(command, "-t", table, "-X", chain)

    def _remove_cni_results(self) -> None:
        """Our network's results and the loopback plugin's that appeared while we ran."""
        if CNI_RESULTS.is_dir():
            for name in set(os.listdir(CNI_RESULTS)) - self.cni_results_before:
                if name.startswith(("registry-v2-", "cni-loopback-")):
                    with contextlib.suppress(OSError):
                        (CNI_RESULTS / name).unlink()

    def _remove_kubepods_cgroups(self) -> None:
        for hierarchy in _hierarchies():
            root = hierarchy / KUBEPODS
            if not root.is_dir():
                continue
            directories = sorted(
                (p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts)
            )
            for directory in reversed([root, *directories]):
                with contextlib.suppress(OSError):
                    directory.rmdir()


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _hierarchies() -> list[Path]:
    """Every mounted cgroup hierarchy (v1: one per controller; v2: the root)."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return [CGROUP_ROOT]
    return [p for p in CGROUP_ROOT.iterdir() if p.is_dir() and not p.is_symlink()]
