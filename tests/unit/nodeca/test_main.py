"""node-ca on a temporary directory: a fake mounted ConfigMap that the test updates the
way the kubelet does (a new timestamped directory, then the ``..data`` symlink swapped),
and a fake ``certs.d`` holding a user's directory beside ours."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from localcluster.waiting import wait_for
from nodeca.config import NodeCaConfig
from nodeca.main import Said, run_node_ca, sync_once
from nodeca.plan import CA_FILE, HOSTS_FILE, MARKER

CA = b"-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n"
NEW = b"-----BEGIN CERTIFICATE-----\nNEW\n-----END CERTIFICATE-----\n"
SVC_KEY = "image-registry.image-registry-system.svc..5000"
SVC = "image-registry.image-registry-system.svc:5000"
ROUTE_KEY = "registry.example.com"
EXIT_SECONDS = 10.0
"""A SIGTERMed node-ca exits at once: it waits on an Event, never mid-sleep."""


class MountedConfigMap:
    """A ConfigMap volume as the kubelet's atomic writer lays it out: ``..<timestamp>/``
    with the files, ``..data`` -> it, and each key -> ``..data/<key>``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.version = 0
        root.mkdir()

    def publish(self, data: dict[str, bytes]) -> None:
        self.version += 1
        payload = self.root / f"..2026_12_07_20_00_{self.version:02d}.000000001"
        payload.mkdir()
        for key, value in data.items():
            (payload / key).write_bytes(value)
        link = self.root / "..data_tmp"
        link.symlink_to(payload.name)
        os.replace(link, self.root / "..data")
        for key in data:
            user_link = self.root / key
            if not user_link.is_symlink():
                user_link.symlink_to(f"..data/{key}")
        for entry in self.root.iterdir():
            if entry.is_symlink() and not entry.name.startswith("..") and entry.name not in data:
                entry.unlink()


@pytest.fixture
def node(tmp_path: Path) -> tuple[MountedConfigMap, Path, NodeCaConfig]:
    mounted = MountedConfigMap(tmp_path / "certificates")
    hosts = tmp_path / "certs.d"
    hosts.mkdir()
    user = hosts / "mirror.example.com"
    user.mkdir()
    (user / HOSTS_FILE).write_text('server = "https://mirror.example.com"\n')
    return mounted, hosts, NodeCaConfig(mounted.root, hosts, sync_seconds=0.05)


Node = tuple[MountedConfigMap, Path, NodeCaConfig]


def test_keys_are_mirrored_rewritten_on_a_swap_and_removed_leaving_the_users_dir(
    node: Node,
) -> None:
    mounted, hosts, config = node
    mounted.publish({SVC_KEY: CA, ROUTE_KEY: CA})
    assert sync_once(config)
    assert (hosts / SVC / CA_FILE).read_bytes() == CA
    assert f'server = "https://{SVC}"' in (hosts / SVC / HOSTS_FILE).read_text()
    assert (hosts / ROUTE_KEY / MARKER).is_file()
    assert not sync_once(config)  # nothing changed, nothing written

    mounted.publish({SVC_KEY: NEW})  # CA rotated, route dropped
    assert sync_once(config)
    assert (hosts / SVC / CA_FILE).read_bytes() == NEW
    assert not (hosts / ROUTE_KEY).exists()
    assert (hosts / "mirror.example.com" / HOSTS_FILE).is_file()
    leftovers = [p.name for p in (hosts / SVC).iterdir() if p.name.startswith(f".{CA_FILE}.")]
    assert leftovers == []  # the temporary files were all renamed into place

    mounted.publish({})  # the ConfigMap emptied: no CA to trust
    assert sync_once(config)
    assert sorted(p.name for p in hosts.iterdir()) == ["mirror.example.com"]


def test_a_users_directory_for_our_host_is_never_overwritten(node: Node) -> None:
    mounted, hosts, config = node
    mine = hosts / SVC
    mine.mkdir()
    (mine / HOSTS_FILE).write_text("# the user's\n")
    mounted.publish({SVC_KEY: CA})
    sync_once(config)
    assert (mine / HOSTS_FILE).read_text() == "# the user's\n"
    assert not (mine / CA_FILE).exists()


def test_a_symlink_under_our_hosts_name_is_never_written_through(
    node: Node, tmp_path: Path
) -> None:
    mounted, hosts, config = node
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (hosts / SVC).symlink_to(elsewhere)
    mounted.publish({SVC_KEY: CA})
    sync_once(config)
    assert list(elsewhere.iterdir()) == []


def test_a_lasting_conflict_is_warned_about_once(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    mounted, hosts, config = node
    (hosts / SVC).mkdir()
    mounted.publish({SVC_KEY: CA, "bad_host": CA})
    said = Said()
    for _ in range(3):
        sync_once(config, said)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2, warnings  # the user's directory, the bad key: once each


def test_files_a_user_added_to_our_directory_keep_it(node: Node) -> None:
    mounted, hosts, config = node
    mounted.publish({SVC_KEY: CA})
    sync_once(config)
    (hosts / SVC / "client.cert").write_text("theirs")
    mounted.publish({})
    sync_once(config)
    assert [p.name for p in (hosts / SVC).iterdir()] == ["client.cert"]


def test_no_volume_yet_is_nothing_to_do(tmp_path: Path) -> None:
    config = NodeCaConfig(tmp_path / "absent", tmp_path / "certs.d")
    assert not sync_once(config)


def test_the_loop_follows_a_swap_and_stops_on_request(node: Node) -> None:
    mounted, hosts, config = node
    mounted.publish({SVC_KEY: CA})
    stop = threading.Event()
    loop = threading.Thread(target=run_node_ca, args=(config, stop))
    loop.start()
    try:
        wait_for(lambda: (hosts / SVC / CA_FILE).is_file(), timeout=5, what="the first sync")
        mounted.publish({SVC_KEY: NEW})
        wait_for(
            lambda: (hosts / SVC / CA_FILE).read_bytes() == NEW, timeout=5, what="the swap seen"
        )
    finally:
        stop.set()
        loop.join(timeout=EXIT_SECONDS)
    assert not loop.is_alive()


def test_the_command_needs_no_api_server_and_exits_cleanly_on_sigterm(
    node: Node, tmp_path: Path
) -> None:
    mounted, hosts, _ = node
    environment = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    mounted.publish({SVC_KEY: CA})
    process = subprocess.Popen(
        [
            sys.executable, "-m", "cli", "node-ca", "--log-format=text",
            f"--certificates-dir={mounted.root}", f"--hosts-dir={hosts}",
        ],
        cwd=Path(__file__).resolve().parents[3],
        env={**environment, "HOME": str(tmp_path)},  # no ~/.kube/config either
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: (hosts / SVC / HOSTS_FILE).is_file(), timeout=20, what="node-ca's sync")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=EXIT_SECONDS) == 0
    finally:
        process.kill()
        process.wait()
