"""hack/build-base-image.sh with stand-ins for apt-get and debootstrap: the mirror is the
one apt reads for bookworm, the root is cleaned of the build machine's traces before it is
packed, and the tarball is cached by its inputs (a second run makes nothing)."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "hack" / "build-base-image.sh"
MIRROR = "http://mirror.test/debian/"

# What `apt-get indextargets --format ...` prints: security and updates before the suite.
APT_GET = f"""#!/bin/sh
echo "deb Packages bookworm-security http://security.test/debian-security/"
echo "deb DEP-11 bookworm {MIRROR}"
echo "deb-src Sources bookworm http://sources.test/debian/"
echo "deb Packages bookworm {MIRROR}"
echo "deb Packages bookworm http://second.test/debian/"
"""
# Records its arguments and lays out a root with the host traces the script must clean.
DEBOOTSTRAP = """#!/bin/sh
echo "$*" >> "$DEBOOTSTRAP_LOG"
root=$4
mkdir -p "$root/etc" "$root/var/lib/apt/lists" "$root/var/cache/apt" "$root/dev" "$root/usr/bin"
echo "nameserver 10.0.0.1" > "$root/etc/resolv.conf"
echo "buildhost" > "$root/etc/hostname"
echo "index" > "$root/var/lib/apt/lists/mirror_Packages"
echo "cache" > "$root/var/cache/apt/pkgcache.bin"
echo "node" > "$root/dev/null-ish"
echo "python" > "$root/usr/bin/python3"
"""
ID = "#!/bin/sh\necho 0\n"


def run(
    tmp_path: Path, apt_get: str = APT_GET, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    stubs = tmp_path / "bin"
    stubs.mkdir(exist_ok=True)
    for name, text in {"apt-get": apt_get, "debootstrap": DEBOOTSTRAP, "id": ID}.items():
        (stubs / name).write_text(text)
        (stubs / name).chmod(0o755)
    return subprocess.run(
        ["/bin/bash", str(SCRIPT)],
        env={
            "PATH": f"{stubs}:/usr/bin:/bin",
            "REGISTRY_V2_CACHE": str(tmp_path / "cache"),
            "DEBOOTSTRAP_LOG": str(tmp_path / "debootstrap.log"),
            **extra_env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_root_comes_from_apts_bookworm_mirror_cleaned(tmp_path: Path) -> None:
    result = run(tmp_path)
    assert result.returncode == 0, result.stderr
    [call] = (tmp_path / "debootstrap.log").read_text().splitlines()
    words = call.split()
    assert words[0] == "--variant=minbase"
    assert words[1] == "--include=python3,python3-venv,ca-certificates,netbase,tzdata"
    assert words[2] == "bookworm"
    assert words[-1] == MIRROR
    tarball = Path(result.stdout.splitlines()[-1]) / "rootfs.tar.gz"
    with tarfile.open(tarball) as archive:
        members = {m.name.removeprefix("./"): m for m in archive.getmembers()}
        assert members["etc/resolv.conf"].size == 0
        assert members["etc/hostname"].size == 0
        assert members["usr/bin/python3"].size > 0
    assert not [name for name in members if name.startswith("var/lib/apt/lists/")]
    assert not [name for name in members if name.startswith("var/cache/apt/")]
    assert not [name for name in members if name.startswith("dev/")]


def test_a_second_run_reuses_the_tarball_and_another_mirror_misses(tmp_path: Path) -> None:
    first = run(tmp_path).stdout.splitlines()[-1]
    second = run(tmp_path)
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[-1] == first
    assert len((tmp_path / "debootstrap.log").read_text().splitlines()) == 1
    other = run(tmp_path, DEBIAN_MIRROR="http://other.test/debian/")
    assert other.returncode == 0, other.stderr
    assert other.stdout.splitlines()[-1] != first
    assert (
        (tmp_path / "debootstrap.log")
        .read_text()
        .splitlines()[-1]
        .endswith(" http://other.test/debian/")
    )


def test_no_bookworm_archive_in_apts_sources_is_a_clear_refusal(tmp_path: Path) -> None:
    result = run(tmp_path, apt_get="#!/bin/sh\necho 'deb Packages trixie http://x.test/'\n")
    assert result.returncode != 0
    assert "no bookworm archive" in result.stderr
    assert "set DEBIAN_MIRROR" in result.stderr
    assert not (tmp_path / "debootstrap.log").exists()
