"""Runnable single-binary images: real layers, names containerd imports them by."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from localcluster import runnable


def _blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def test_the_image_holds_the_binary_at_its_entrypoint_with_a_true_diff_id(tmp_path: Path) -> None:
    binary = tmp_path / "tool"
    binary.write_bytes(b"\x7fELF not really")
    image = runnable.write_image(
        tmp_path / "layout", binary, entrypoint=["/bin/tool"], cmd=["serve"], name="x/y:1"
    )
    layout = tmp_path / "layout"
    manifest = json.loads(_blob(layout, image.digest))
    config = json.loads(_blob(layout, manifest["config"]["digest"]))
    layer = gzip.decompress(_blob(layout, manifest["layers"][0]["digest"]))
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]
    assert config["config"]["Entrypoint"] == ["/bin/tool"]
    assert config["config"]["Cmd"] == ["serve"]
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        member = tar.getmember("bin/tool")
        assert member.mode == 0o755
        assert tar.extractfile(member).read() == b"\x7fELF not really"  # type: ignore[union-attr]


def test_the_index_names_the_image_for_containerd(tmp_path: Path) -> None:
    binary = tmp_path / "pause"
    binary.write_bytes(b"pause")
    runnable.write_image(
        tmp_path / "layout", binary, entrypoint=["/pause"], name="registry.k8s.io/pause:3.10"
    )
    index = json.loads((tmp_path / "layout" / "index.json").read_text())
    annotations = index["manifests"][0]["annotations"]
    assert annotations[runnable.CONTAINERD_NAME_ANNOTATION] == "registry.k8s.io/pause:3.10"
    assert annotations[runnable.REF_NAME_ANNOTATION] == "3.10"


def test_the_same_binary_makes_the_same_digest(tmp_path: Path) -> None:
    binary = tmp_path / "tool"
    binary.write_bytes(b"same")
    first = runnable.write_image(tmp_path / "a", binary, entrypoint=["/tool"])
    second = runnable.write_image(tmp_path / "b", binary, entrypoint=["/tool"])
    assert first.digest == second.digest


def test_the_archive_holds_the_layout_files(tmp_path: Path) -> None:
    binary = tmp_path / "tool"
    binary.write_bytes(b"x")
    runnable.write_image(tmp_path / "layout", binary, entrypoint=["/tool"])
    archive = runnable.write_archive(tmp_path / "layout", tmp_path / "image.tar")
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert {"index.json", "oci-layout"} <= names
    assert sum(name.startswith("blobs/sha256/") for name in names) == 3


def test_the_command_writes_a_layout_whose_command_is_its_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fake_build(directory: Path) -> Path:
        binary = directory / "marker"
        binary.write_bytes(b"marker")
        return binary

    # gcc is the marker build's own business (the e2e suite builds it for real).
    monkeypatch.setattr(runnable, "build_marker_binary", fake_build)
    layout = tmp_path / "app"
    assert runnable.main([str(layout), "hello", "from-app"]) == 0
    assert capsys.readouterr().out.strip() == str(layout)
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads(_blob(layout, index["manifests"][0]["digest"]))
    config = json.loads(_blob(layout, manifest["config"]["digest"]))
    assert config["config"]["Entrypoint"] == [runnable.MARKER_ENTRYPOINT]
    assert config["config"]["Cmd"] == ["hello", "from-app"]
