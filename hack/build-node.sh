#!/usr/bin/env bash
# Builds a node's Kubernetes parts, kubelet, kube-scheduler and kube-proxy, from the same
# pinned module as the control plane (hack/controlplane), and the pause binary from that
# module's own build/pause source, and caches them outside the work tree, keyed by the
# module's checksums and this script. A second run finds the cache and returns at once.
#
# Prints the cache directory (the one holding bin/) on its last line of stdout.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/progress.sh"
mod="$here/controlplane"
k8s_version=$(awk '$1 == "k8s.io/kubernetes" {print $2; exit}' "$mod/go.mod")
key=$(cat "$mod/go.mod" "$mod/go.sum" "$0" | sha256sum | cut -c1-12)
cache_root=${REGISTRY_V2_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/registry-v2}
dest="$cache_root/node-k8s-$k8s_version-$key"
bins=(kubelet kube-scheduler kube-proxy pause)
# The tag of Kubernetes' own pause image for this release (build/pause/Makefile's TAG is
# the next one; kubelet 1.33 asks for 3.10, `kubeadm config images list`).
pause_tag=3.10

complete() {
  for b in "${bins[@]}"; do [ -x "$dest/bin/$b" ] || return 1; done
}

if complete; then
  echo "$dest"
  exit 0
fi

command -v go >/dev/null || { echo "go is required to build the node" >&2; exit 1; }
command -v gcc >/dev/null || { echo "gcc is required to build the pause binary" >&2; exit 1; }
mkdir -p "$cache_root"
# One builder at a time, shared with the control plane's build (same module, same caches).
exec 9>"$cache_root/.build.lock"
flock 9
if complete; then
  echo "$dest"
  exit 0
fi

work=$(mktemp -d "$cache_root/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "building kubelet, kube-scheduler, kube-proxy $k8s_version and pause into $dest (first run only)" >&2
cd "$mod"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
ldflags="-s -w"
for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  ldflags+=" -X $p.gitVersion=$k8s_version -X $p.gitMajor=1 -X $p.gitMinor=$(echo "$k8s_version" | cut -d. -f2) -X $p.gitTreeState=clean"
done
for b in kubelet kube-scheduler kube-proxy; do
  echo "  go build $b" >&2
  with_progress "building $b" \
    go build -trimpath -ldflags "$ldflags" -o "$work/bin/$b" "k8s.io/kubernetes/cmd/$b"
done
source_dir=$(go list -m -f '{{.Dir}}' k8s.io/kubernetes)
echo "  gcc pause" >&2
gcc -Os -Wall -Werror -static -DVERSION="v$pause_tag" -o "$work/bin/pause" \
  "$source_dir/build/pause/linux/pause.c"
echo "$pause_tag" > "$work/pause-tag"
mkdir -p "$(dirname "$dest")"
rm -rf "$dest"
mv "$work" "$dest"
trap - EXIT
echo "$dest"
