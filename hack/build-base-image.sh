#!/usr/bin/env bash
# Makes the base the service's image builds on when no image registry is reachable: a
# Debian bookworm root from debootstrap with Debian's Python 3.11 and its venv module, the
# CA bundle, netbase and tzdata, from the Debian mirror the host's apt uses. debootstrap
# is not reproducible (package unpack times, maintainer scripts), so the cleaned root is
# kept as a tarball, the cached artifact, keyed by the suite, the package list, the mirror
# and this script. A second run finds it and returns at once.
#
# DEBIAN_MIRROR overrides the mirror. Prints the cache directory (the one holding
# rootfs.tar.gz) on its last line of stdout.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/cached-build.sh"
suite=bookworm
include=python3,python3-venv,ca-certificates,netbase,tzdata

# The first archive apt itself would fetch this suite's packages from: apt parses its own
# sources (one-line .list and deb822 .sources alike), so its answer is the host's mirror.
host_mirror() {
  apt-get indextargets --no-release-info \
    --format '$(TARGET_OF) $(IDENTIFIER) $(RELEASE) $(REPO_URI)' 2>/dev/null |
    awk -v suite="$suite" '$1 == "deb" && $2 == "Packages" && $3 == suite {print $4; exit}'
}

mirror=${DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
  command -v apt-get >/dev/null && mirror=$(host_mirror)
  [ -n "$mirror" ] || {
    echo "build-base-image: no $suite archive in apt's sources; set DEBIAN_MIRROR" >&2
    exit 1
  }
fi
key=$(printf '%s\n' "$suite" "$include" "$mirror" | cat - "$0" | sha256sum | cut -c1-12)
dest="$cache_root/base-debian-$suite-$key"

complete() {
  [ -s "$dest/rootfs.tar.gz" ]
}

if complete; then
  echo "$dest"
  exit 0
fi
command -v debootstrap >/dev/null || {
  echo "build-base-image: debootstrap is required (make nodepackages)" >&2
  exit 1
}
[ "$(id -u)" -eq 0 ] || { echo "build-base-image: debootstrap needs root" >&2; exit 1; }
mkdir -p "$cache_root"
# One debootstrap at a time: a second caller waits for the first, then finds the tarball.
exec 8>"$cache_root/.base-image.lock"
flock 8
if complete; then
  echo "$dest"
  exit 0
fi

# debootstrap mounts /proc and /sys (and may bind /dev) inside the root while it works, and
# leaves them mounted when it fails: unmount whatever is under the work directory before
# removing it, and never let rm cross into another file system.
cleanup() {
  awk -v w="$work/" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m" || true; done
  rm -rf --one-file-system "$work"
}
work=$(mktemp -d "$cache_root/.base.XXXXXX")
trap cleanup EXIT
echo "making the Debian $suite base from $mirror into $dest (first run only, about a minute)" >&2
debootstrap --variant=minbase --include="$include" "$suite" "$work/root" "$mirror" >&2
# Nothing of the build machine, and no package index, in the image: the lists are large
# and stale at once, resolv.conf and hostname are the host's (the runtime provides both).
rm -rf "$work/root/var/lib/apt/lists/"* "$work/root/var/cache/apt/"*
rm -f "$work/root/var/log/bootstrap.log" "$work/root/var/log/dpkg.log" \
  "$work/root/var/log/alternatives.log"
rm -rf "$work/root/var/log/apt/"*
# The runtime mounts its own /dev; device nodes in a layer only get in its way.
rm -rf --one-file-system "$work/root/dev/"*
: >"$work/root/etc/resolv.conf"
: >"$work/root/etc/hostname"
chmod 0644 "$work/root/etc/resolv.conf" "$work/root/etc/hostname"
echo "  packing the root" >&2
tar --numeric-owner --xattrs --sort=name -C "$work/root" -czf "$work/rootfs.tar.gz" .
rm -rf --one-file-system "$work/root"
mkdir -p "$(dirname "$dest")"
rm -rf "$dest"
mv "$work" "$dest"
trap - EXIT
echo "$dest"
