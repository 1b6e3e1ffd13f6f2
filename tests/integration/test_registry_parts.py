"""The real parts behind the front door, with no cluster: crane pushes test-made layouts
straight to the local CNCF registry and pulls back exactly what it pushed.

These tests ask for no ``cluster`` fixture, so they start no control plane (the directory's
``cluster`` marker is only a label); they prove the tooling the front door's tests build on.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from localcluster import ocilayout
from localcluster.crane import Crane
from localcluster.ocilayout import random_layers
from localcluster.registry import LOG_NAME, READY_TIMEOUT_SECONDS, LocalRegistry
from localcluster.supervisor import Supervisor
from localcluster.waiting import wait_for

LAYER_SIZES = [1024, 64 * 1024]
"""Small, and more than one layer, so uploads run concurrently as they do for real images."""


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    started = LocalRegistry(tmp_path_factory.mktemp("registry")).start()
    yield started
    started.stop()


@pytest.fixture
def crane(registry: LocalRegistry, tmp_path: Path) -> Crane:
    return Crane(registry.ca_file, tmp_path / "home")


def blobs(layout: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (layout / "blobs" / "sha256").iterdir()}


def blob_bytes(layout: Path, hex_digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / hex_digest).read_bytes()


def top_digest(layout: Path) -> str:
    [entry] = json.loads((layout / "index.json").read_text())["manifests"]
    digest: str = entry["digest"]
    return digest


def assert_round_trip(crane: Crane, layout: Path, ref: str, digest: str, pulled: Path) -> None:
    """Pushed, served under the tag by the layout's digest, and pulled back byte for byte."""
    pushed = crane.push(layout, ref)
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout.strip() == f"{ref.rsplit(':', 1)[0]}@{digest}"

    served = crane.digest(ref)
    assert served.returncode == 0, served.stderr
    assert served.stdout.strip() == digest

    pull = crane.pull(ref, pulled)
    assert pull.returncode == 0, pull.stderr
    assert top_digest(pulled) == digest
    assert blobs(pulled) == blobs(layout)


@pytest.mark.parametrize("docker", [False, True], ids=["oci", "docker-schema2"])
def test_image_round_trip(
    registry: LocalRegistry, crane: Crane, tmp_path: Path, docker: bool
) -> None:
    layout = tmp_path / "image"
    image = ocilayout.write_image(layout, random_layers(LAYER_SIZES, seed=1), docker=docker)
    ref = f"{registry.host}/team/app:v1"

    assert_round_trip(crane, layout, ref, image.digest, tmp_path / "pulled")
    served = json.loads(crane.manifest(ref).stdout)
    assert [layer["size"] for layer in served["layers"]] == LAYER_SIZES


@pytest.mark.parametrize("docker", [False, True], ids=["oci", "docker-list"])
def test_index_round_trip(
    registry: LocalRegistry, crane: Crane, tmp_path: Path, docker: bool
) -> None:
    layout = tmp_path / "index"
    children = [random_layers([100, 200], seed=2), random_layers([300], seed=3)]
    index = ocilayout.write_index(layout, children, docker=docker)
    ref = f"{registry.host}/team/multi:v1"

    assert_round_trip(crane, layout, ref, index.digest, tmp_path / "pulled")
    for child in index.children:
        by_digest = crane.digest(f"{registry.host}/team/multi@{child.digest}")
        assert by_digest.stdout.strip() == child.digest


def test_blobs_are_stored_under_the_registry_directory(
    registry: LocalRegistry, crane: Crane, tmp_path: Path
) -> None:
    image = ocilayout.write_image(tmp_path / "image", random_layers([10], seed=4))
    assert crane.push(tmp_path / "image", f"{registry.host}/team/stored:v1").returncode == 0

    hex_digest = image.layers[0].digest.removeprefix("sha256:")
    data = registry.storage_dir / "docker/registry/v2/blobs/sha256" / hex_digest[:2] / hex_digest
    assert (data / "data").read_bytes() == blob_bytes(tmp_path / "image", hex_digest)


def test_upload_locations_are_relative(registry: LocalRegistry) -> None:
    """So that they survive a reverse proxy: the client resolves them against the
    address it used, the front door's."""
    response = requests.post(
        f"{registry.url}/v2/team/app/blobs/uploads/", verify=str(registry.ca_file), timeout=10
    )
    assert response.status_code == requests.codes.accepted
    assert response.headers["Location"].startswith("/v2/team/app/blobs/uploads/")


def test_a_tag_delete_removes_the_tag_and_keeps_the_manifest(
    registry: LocalRegistry, crane: Crane, tmp_path: Path
) -> None:
    """Deletes are on (the controller removes the tags no ImageStream holds, issue 17 item
    6); a tag delete leaves the manifest, which garbage collection reclaims later. Clients
    never reach this: the front door refuses their DELETEs."""
    image = ocilayout.write_image(tmp_path / "image", random_layers([10], seed=5))
    assert crane.push(tmp_path / "image", f"{registry.host}/team/kept:v1").returncode == 0

    deleted = crane.run("delete", f"{registry.host}/team/kept:v1")
    assert deleted.returncode == 0, deleted.stderr
    assert crane.digest(f"{registry.host}/team/kept:v1").returncode != 0
    kept = crane.digest(f"{registry.host}/team/kept@{image.digest}")
    assert kept.stdout.strip() == image.digest


def test_crane_trusts_only_the_given_ca(registry: LocalRegistry, tmp_path: Path) -> None:
    """Without the registry's CA, TLS verification fails: ``SSL_CERT_FILE`` is what
    makes crane trust it, not a skipped check."""
    other_ca = LocalRegistry(tmp_path / "other").ca_file
    stranger = Crane(other_ca, tmp_path / "home")
    result = stranger.digest(f"{registry.host}/team/app:v1")
    assert result.returncode != 0
    assert "certificate signed by unknown authority" in result.stderr


def test_login_writes_what_a_pull_secret_carries(
    registry: LocalRegistry, crane: Crane, tmp_path: Path
) -> None:
    """``crane auth login`` and :meth:`Crane.write_credentials` leave the same
    ``config.json``, so a test may use either; the password never reaches argv."""
    logged_in = crane.login(registry.host, "any", "token-value")
    assert logged_in.returncode == 0, logged_in.stderr
    assert "token-value" not in logged_in.stdout + logged_in.stderr
    by_login = json.loads((crane.config_dir / "config.json").read_text())

    written = Crane(registry.ca_file, tmp_path / "other-home")
    written.write_credentials(registry.host, "any", "token-value")
    assert json.loads((written.config_dir / "config.json").read_text()) == by_login

    written.forget_credentials()
    assert not (written.config_dir / "config.json").exists()


def test_supervised_registry_comes_back_on_its_port_with_its_data(tmp_path: Path) -> None:
    """As ``make dev`` runs it: killed, restarted by the supervisor on the same port with
    the same certificate and storage, still serving what was pushed before."""
    local = LocalRegistry(tmp_path / "supervised")
    supervisor = Supervisor().start()
    try:
        first = supervisor.run(LOG_NAME, local.spawn)
        local.wait_ready()
        image = ocilayout.write_image(tmp_path / "image", random_layers([10], seed=6))
        ref = f"{local.host}/team/app:v1"
        client = Crane(local.ca_file, tmp_path / "supervised-home")
        assert client.push(tmp_path / "image", ref).returncode == 0

        first.popen.send_signal(signal.SIGKILL)
        wait_for(lambda: supervisor.restarts(LOG_NAME) == 1, timeout=10, what="a restart")
        local.wait_ready()
        assert client.digest(ref).stdout.strip() == image.digest
    finally:
        supervisor.close()


def test_a_registry_that_exits_fails_the_start_at_once_with_its_log(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))  # bound, not listening: no one answers on it
        local = LocalRegistry(tmp_path / "clash", port=taken.getsockname()[1])
        began = time.monotonic()
        with pytest.raises(RuntimeError, match="address already in use"):
            local.start()
    assert time.monotonic() - began < READY_TIMEOUT_SECONDS / 2
    assert local.process is not None and not local.process.running()
