"""hack/install-node-packages.sh against stand-ins for dpkg-query, apt-get and id: it
installs only what is missing, touches no package index when nothing is, and says why it
cannot when it cannot. The stand-ins are the only commands on PATH, so the machine's own
apt-get is never reached."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = ROOT / "hack" / "install-node-packages.sh"
PACKAGES = ("containerd", "runc", "containernetworking-plugins", "buildah", "debootstrap")
BASH = "/bin/bash"

DPKG_QUERY = """#!/bin/sh
for arg; do package=$arg; done
case " $INSTALLED " in
  *" $package "*) printf 'ii ' ;;
  *" $package:removed "*) printf 'rc ' ;;
  *) echo "dpkg-query: no packages found matching $package" >&2; exit 1 ;;
esac
"""
APT_GET = """#!/bin/sh
echo "$*" >> "$APT_LOG"
"""
ID = """#!/bin/sh
echo "$FAKE_UID"
"""


@dataclass(frozen=True)
class Run:
    returncode: int
    stderr: str
    apt_calls: list[str]


def run(tmp_path: Path, installed: str, *, uid: int = 0, apt_get: bool = True) -> Run:
    stubs = tmp_path / "bin"
    stubs.mkdir()
    commands = {"dpkg-query": DPKG_QUERY, "id": ID, **({"apt-get": APT_GET} if apt_get else {})}
    for name, text in commands.items():
        (stubs / name).write_text(text)
        (stubs / name).chmod(0o755)
    log = tmp_path / "apt.log"
    result = subprocess.run(
        [BASH, str(SCRIPT)],
        env={
            "PATH": str(stubs),
            "INSTALLED": installed,
            "APT_LOG": str(log),
            "FAKE_UID": str(uid),
        },
        capture_output=True,
        text=True,
        timeout=30,
    )
    calls = log.read_text().splitlines() if log.exists() else []
    return Run(result.returncode, result.stderr, calls)


def test_nothing_missing_needs_no_apt_at_all(tmp_path: Path) -> None:
    """The warm run: no `apt-get update`, so no network, and nothing printed."""
    result = run(tmp_path, " ".join(PACKAGES))
    assert result.returncode == 0, result.stderr
    assert result.apt_calls == []
    assert result.stderr == ""


def test_only_the_missing_packages_are_installed_without_recommends(tmp_path: Path) -> None:
    result = run(tmp_path, "containerd runc containernetworking-plugins buildah:removed")
    assert result.returncode == 0, result.stderr
    update, install = result.apt_calls
    assert update.split()[0] == "update"
    words = install.split()
    assert words[0] == "install"
    assert {"-y", "--no-install-recommends"} <= set(words)
    assert [w for w in words if not w.startswith("-")][1:] == ["buildah", "debootstrap"]
    assert "podman" not in install


def test_a_missing_package_without_root_is_a_clear_refusal(tmp_path: Path) -> None:
    result = run(tmp_path, "containerd runc", uid=1000)
    assert result.returncode != 0
    assert result.apt_calls == []
    assert "needs root" in result.stderr
    assert "containernetworking-plugins buildah debootstrap" in result.stderr


@pytest.mark.parametrize("uid", [0, 1000])
def test_no_apt_get_is_a_clear_refusal(tmp_path: Path, uid: int) -> None:
    result = run(tmp_path, "containerd", uid=uid, apt_get=False)
    assert result.returncode != 0
    assert "apt-get not found" in result.stderr
    assert "runc" in result.stderr
