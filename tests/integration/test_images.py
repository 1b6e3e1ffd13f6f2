"""The project's images as the node gets them: built by ``hack/build-images.sh`` (cached;
the first build takes minutes, later ones a second), each OCI archive naming its image
for ``ctr images import``, and each image's entrypoint run the way a pod runs it: runc,
the image's numeric user and environment, a read-only root filesystem.

That the Dockerfile still builds on its public default base cannot be tested here: no
image registry is reachable. Needs root, buildah and runc (``make nodepackages``); runs
with the local stack only (it builds on this machine), and starts no control plane.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from localcluster.images import BuiltImage, Images, built_images
from tests.dockerimage import read
from tests.integration.support.ociarchives import (
    REF_NAME,
    Storage,
    read_archive,
    run_container,
    serve_until,
)

pytestmark = pytest.mark.local_only

REGISTRY_VERSION = "v3.1.2"
"""distribution's release that hack/ocitools pins (README: make ocitools)."""


@pytest.fixture(scope="module")
def images() -> Images:
    return built_images()


@pytest.fixture(scope="module")
def storage() -> Iterator[Storage]:
    """One buildah storage for the module: each image is unpacked once."""
    store = Storage(Path(tempfile.mkdtemp(prefix="registry-v2-images-test-")))
    try:
        yield store
    finally:
        store.remove()


def both(images: Images) -> dict[str, BuiltImage]:
    return {"policy": images.policy, "registry": images.registry}


def test_each_archive_names_its_image_for_ctr_import(images: Images) -> None:
    """ctr keeps a full reference from the index as the image's name; both images carry
    the key of the inputs they were built from, which is the cache directory's too."""
    key = images.policy.archive.parent.name.removeprefix("images-")
    for role, image in both(images).items():
        assert image.name == f"localhost/registry-v2/{role}:{key}"
        [entry] = read_archive(image.archive).index["manifests"]
        assert entry["annotations"][REF_NAME] == image.name


def test_every_image_is_stamped_with_the_source_date_epoch(images: Images) -> None:
    """The same inputs give the same digests: no build time in any config."""
    stamp = datetime.fromtimestamp(images.source_date_epoch, UTC)
    for image in both(images).values():
        config = read_archive(image.archive).config
        assert datetime.fromisoformat(config["created"].replace("Z", "+00:00")) == stamp
        assert all(
            datetime.fromisoformat(entry["created"].replace("Z", "+00:00")) == stamp
            for entry in config.get("history", [])
            if "created" in entry
        )


@pytest.fixture(scope="module")
def policy_root(images: Images, storage: Storage) -> Iterator[Path]:
    with storage.rootfs(images.policy.archive) as rootfs:
        yield rootfs


@pytest.fixture(scope="module")
def registry_root(images: Images, storage: Storage) -> Iterator[Path]:
    with storage.rootfs(images.registry.archive) as rootfs:
        yield rootfs


def test_the_policy_images_entrypoint_runs_as_its_user_on_a_read_only_root(
    images: Images, policy_root: Path, tmp_path: Path
) -> None:
    archived = read_archive(images.policy.archive)
    image = archived.config["config"]
    dockerfile = read()
    assert image["User"] == dockerfile.user
    assert tuple(image["Entrypoint"]) == dockerfile.entrypoint
    assert tuple(image["Cmd"]) == dockerfile.cmd
    # The entrypoint by name, found on the image's PATH (its virtualenv first).
    args = [*image["Entrypoint"], "--help"]
    result = run_container(tmp_path / "help", policy_root, archived.config, args)
    assert result.returncode == 0, result.stderr
    for command in ("serve", "frontdoor", "controller"):
        assert command in result.stdout
    # Its user and group have names (groupadd before useradd), and even /tmp, writable by
    # all in the image, is refused: the root is read-only (a pod mounts an emptyDir there).
    script = "id -un; id -gn; touch /tmp/probe 2>&1 || echo refused"
    result = run_container(tmp_path / "id", policy_root, archived.config, ["sh", "-c", script])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["registry", "registry"]
    assert "Read-only file system" in lines[2]
    assert lines[3] == "refused"


def test_the_registry_image_runs_the_static_registry_from_scratch_as_non_root(
    images: Images, registry_root: Path, tmp_path: Path
) -> None:
    archived = read_archive(images.registry.archive)
    image = archived.config["config"]
    assert image["User"] == "65532:65532"
    assert image["Entrypoint"] == ["/bin/registry"]
    assert image["Cmd"] == ["serve", "/etc/distribution/config.yml"]
    assert len(archived.manifest["layers"]) == 1  # scratch: nothing but what it adds
    rootfs = registry_root
    assert sorted(p.name for p in rootfs.iterdir()) == ["bin", "etc", "tmp", "var"]
    data = (rootfs / "var" / "lib" / "registry").stat()
    assert (data.st_uid, data.st_gid) == (65532, 65532)
    config = (rootfs / "etc" / "distribution" / "config.yml").read_text()
    assert "rootdirectory: /var/lib/registry" in config
    args = [*image["Entrypoint"], "--version"]
    result = run_container(tmp_path / "version", rootfs, archived.config, args)
    assert result.returncode == 0, result.stderr
    assert REGISTRY_VERSION in result.stdout


def test_the_registry_image_serves_with_its_default_config(
    images: Images, registry_root: Path, tmp_path: Path
) -> None:
    """As shipped (a deployment mounts its own config over it): it starts on a read-only
    root as 65532 and listens on :5000."""
    config = read_archive(images.registry.archive).config
    image = config["config"]
    lines = serve_until(
        tmp_path / "serve",
        registry_root,
        config,
        [*image["Entrypoint"], *image["Cmd"]],
        "listening on",
    )
    assert lines and "listening on [::]:5000" in lines[-1], "".join(lines)
