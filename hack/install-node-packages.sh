#!/usr/bin/env bash
# Installs the Debian packages a local node and the image builds run on: containerd, runc,
# the CNI plugins (in /usr/lib/cni), buildah and debootstrap. Only what is missing is
# installed, so a machine that has them all (a warm run) returns at once, with no
# `apt-get update` and no network.
#
# No podman: its package drops a conflist into /etc/cni/net.d, which a CRI runtime reading
# that folder would pick up. Recommends stay out (buildah recommends podman's helpers,
# containerd recommends nothing the node uses): --no-install-recommends.
set -euo pipefail

packages=(containerd runc containernetworking-plugins buildah debootstrap)

installed() {
  # "install ok installed" only: a package removed but not purged is still known to dpkg.
  [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

command -v dpkg-query >/dev/null || {
  echo "install-node-packages: dpkg-query not found: this needs a Debian (or derived) system" >&2
  exit 1
}
missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

command -v apt-get >/dev/null || {
  echo "install-node-packages: apt-get not found; install these by hand: ${missing[*]}" >&2
  exit 1
}
[ "$(id -u)" -eq 0 ] || {
  echo "install-node-packages: missing ${missing[*]}; installing them needs root" \
    "(sudo make nodepackages)" >&2
  exit 1
}
echo "install-node-packages: installing ${missing[*]} (first run only, about a minute)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
