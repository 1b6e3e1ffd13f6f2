"""Where the images come from: the build script's last line, or a directory built
elsewhere, read through its ``images.json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localcluster import images


def write_record(directory: Path, *, archives: tuple[str, ...] = ("p.tar", "r.tar")) -> None:
    for archive in archives:
        (directory / archive).write_bytes(b"tar")
    (directory / "images.json").write_text(
        json.dumps(
            {
                "policy": {"name": "localhost/registry-v2/policy:k", "archive": "p.tar"},
                "registry": {"name": "localhost/registry-v2/registry:k", "archive": "r.tar"},
                "source_date_epoch": 315532800,
            }
        )
    )


def test_the_record_names_each_image_and_its_archive_in_the_directory(tmp_path: Path) -> None:
    write_record(tmp_path)
    found = images.read_record(tmp_path)
    assert found.policy == images.BuiltImage("localhost/registry-v2/policy:k", tmp_path / "p.tar")
    assert found.registry.name == "localhost/registry-v2/registry:k"
    assert found.registry.archive == tmp_path / "r.tar"
    assert found.source_date_epoch == 315532800


def test_a_missing_archive_is_an_error_before_any_import(tmp_path: Path) -> None:
    write_record(tmp_path, archives=("p.tar",))
    with pytest.raises(FileNotFoundError, match=r"missing r\.tar"):
        images.read_record(tmp_path)


def test_the_cache_directory_is_the_scripts_last_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = tmp_path / "images-abc"
    built.mkdir()
    write_record(built)
    script = tmp_path / "build.sh"
    script.write_text(f"echo progress >&2\necho noise\necho {built}\n")
    monkeypatch.delenv(images.OVERRIDE_VARIABLE, raising=False)
    monkeypatch.setattr(images, "BUILD_SCRIPT", script)
    assert images.built_images().policy.archive == built / "p.tar"


def test_a_directory_built_elsewhere_skips_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_record(tmp_path)
    monkeypatch.setenv(images.OVERRIDE_VARIABLE, str(tmp_path))
    monkeypatch.setattr(images, "BUILD_SCRIPT", tmp_path / "no-such-script.sh")
    assert images.built_images().registry.archive == tmp_path / "r.tar"
