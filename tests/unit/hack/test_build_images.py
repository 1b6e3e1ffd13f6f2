"""hack/build-images.sh's cache key, on a copy of the project whose base and registry
builds are stand-ins: every input of the images moves it, and nothing else does, so a
second run with unchanged inputs reuses the archives and a change is never missed."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.dockerimage import read

ROOT = Path(__file__).resolve().parents[3]
COPIED = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "constraints.txt")
PACKAGES = ("cli", "webhook", "frontdoor", "serving", "controller", "nodeca", "kube", "quota")
BUILD_SCRIPT = """#!/usr/bin/env bash
echo "$STUB_ROOT/{name}"
"""


def project(tmp_path: Path) -> Path:
    """The files the images are built from, the script, and stand-in builds whose
    outputs (a base directory, a registry binary) the test controls."""
    copy = tmp_path / "project"
    (copy / "hack" / "lib").mkdir(parents=True)
    for name in COPIED:
        shutil.copy2(ROOT / name, copy / name)
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    for name in (
        "build-images.sh",
        "lib/cached-build.sh",
        "lib/progress.sh",
        "images/registry-config.yml",
    ):
        (copy / "hack" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / "hack" / name, copy / "hack" / name)
    stubs = tmp_path / "outputs"
    (stubs / "base-debian-bookworm-aaaaaaaaaaaa").mkdir(parents=True)
    (stubs / "ocitools" / "bin").mkdir(parents=True)
    (stubs / "ocitools" / "bin" / "registry").write_bytes(b"registry v1")
    (copy / "hack" / "build-base-image.sh").write_text(
        BUILD_SCRIPT.format(name="base-debian-bookworm-aaaaaaaaaaaa")
    )
    (copy / "hack" / "build-ocitools.sh").write_text(BUILD_SCRIPT.format(name="ocitools"))
    return copy


def key(copy: Path, **env: str) -> str:
    result = subprocess.run(
        ["/bin/bash", str(copy / "hack" / "build-images.sh"), "--print-key"],
        env={
            "PATH": "/usr/bin:/bin",
            "STUB_ROOT": str(copy.parent / "outputs"),
            "REGISTRY_V2_CACHE": str(copy.parent / "cache"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    return line


def append(path: str) -> Callable[[Path], None]:
    def change(copy: Path) -> None:
        with (copy / path).open("a") as f:
            f.write("\n# changed\n")

    change.__name__ = path
    return change


def new_base(copy: Path) -> None:
    outputs = copy.parent / "outputs"
    (outputs / "base-debian-bookworm-bbbbbbbbbbbb").mkdir()
    (copy / "hack" / "build-base-image.sh").write_text(
        BUILD_SCRIPT.format(name="base-debian-bookworm-bbbbbbbbbbbb")
    )


def new_registry(copy: Path) -> None:
    (copy.parent / "outputs" / "ocitools" / "bin" / "registry").write_bytes(b"registry v2")


def new_module(copy: Path) -> None:
    (copy / "quota" / "added.py").write_text('"""A new module: the image copies it."""\n')


@pytest.mark.parametrize(
    "change",
    [
        append("Dockerfile"),
        append(".dockerignore"),
        append("constraints.txt"),
        append("pyproject.toml"),
        append("README.md"),
        append("webhook/__init__.py"),
        append("hack/images/registry-config.yml"),
        append("hack/build-images.sh"),
        new_module,
        new_base,
        new_registry,
    ],
    ids=lambda change: str(change.__name__),
)
def test_every_input_moves_the_key(tmp_path: Path, change: Callable[[Path], None]) -> None:
    copy = project(tmp_path)
    before = key(copy)
    assert key(copy) == before
    change(copy)
    assert key(copy) != before


def test_the_source_date_epoch_moves_the_key(tmp_path: Path) -> None:
    copy = project(tmp_path)
    assert key(copy, SOURCE_DATE_EPOCH="315532801") != key(copy)


def test_bytecode_and_files_the_image_does_not_copy_leave_the_key(tmp_path: Path) -> None:
    copy = project(tmp_path)
    before = key(copy)
    (copy / "quota" / "__pycache__").mkdir()
    (copy / "quota" / "__pycache__" / "limits.cpython-311.pyc").write_bytes(b"\0")
    (copy / "quota" / "limits.pyc").write_bytes(b"\0")
    (copy / "tests").mkdir()
    (copy / "tests" / "test_x.py").write_text("")
    (copy / "hack" / "kind-e2e.sh").write_text("")
    assert key(copy) == before


def test_no_buildah_is_a_clear_refusal_before_any_build(tmp_path: Path) -> None:
    copy = project(tmp_path)
    result = subprocess.run(
        ["/bin/bash", str(copy / "hack" / "build-images.sh")],
        env={"PATH": str(tmp_path / "empty"), "STUB_ROOT": str(tmp_path / "outputs")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "buildah is required (make nodepackages)" in result.stderr


def test_the_key_hashes_what_the_dockerfile_copies() -> None:
    """The script names the build context's files itself: it must name the same ones the
    Dockerfile copies, or a change to a newly copied package would reuse a stale image."""
    script = (ROOT / "hack" / "build-images.sh").read_text()
    [files] = re.findall(r"^context=\(([^)]*)\)$", script, re.MULTILINE)
    [packages] = re.findall(r"find ((?:\w+ )+)-type f", script)
    hashed = set(files.split()) | set(packages.split())
    assert hashed == {"Dockerfile", ".dockerignore", *read().context_sources}
