#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager and kubectl from the Go module in
# hack/controlplane and caches them outside the work tree, keyed by the pinned versions
# and the module's checksums. A second run finds the cache and returns at once.
#
# Prints the cache directory (the one holding bin/) on its last line of stdout.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/progress.sh"
mod="$here/controlplane"
k8s_version=$(awk '$1 == "k8s.io/kubernetes" {print $2; exit}' "$mod/go.mod")
etcd_version=$(awk '$1 == "go.etcd.io/etcd/server/v3" {print $2; exit}' "$mod/go.mod")
key=$(cat "$mod/go.mod" "$mod/go.sum" "$mod/etcd/main.go" | sha256sum | cut -c1-12)
cache_root=${REGISTRY_V2_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/registry-v2}
dest="$cache_root/controlplane-k8s-$k8s_version-etcd-$etcd_version-$key"
bins=(etcd kube-apiserver kube-controller-manager kubectl)

complete() {
  for b in "${bins[@]}"; do [ -x "$dest/bin/$b" ] || return 1; done
}

if complete; then
  echo "$dest"
  exit 0
fi

command -v go >/dev/null || { echo "go is required to build the control plane" >&2; exit 1; }
mkdir -p "$cache_root"
# One builder at a time: a second caller waits for the first instead of racing it.
exec 9>"$cache_root/.build.lock"
flock 9
if complete; then
  echo "$dest"
  exit 0
fi

work=$(mktemp -d "$cache_root/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "building Kubernetes $k8s_version and etcd $etcd_version into $dest (first run only; 15-30 minutes on 2 cores)" >&2
cd "$mod"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
ldflags="-s -w"
kv="k8s.io/client-go/pkg/version"
kv2="k8s.io/component-base/version"
for p in "$kv" "$kv2"; do
  ldflags+=" -X $p.gitVersion=$k8s_version -X $p.gitMajor=1 -X $p.gitMinor=$(echo "$k8s_version" | cut -d. -f2) -X $p.gitTreeState=clean"
done
for b in kube-apiserver kube-controller-manager kubectl; do
  echo "  go build $b" >&2
  with_progress "building $b" \
    go build -trimpath -ldflags "$ldflags" -o "$work/bin/$b" "k8s.io/kubernetes/cmd/$b"
done
echo "  go build etcd" >&2
with_progress "building etcd" go build -trimpath -ldflags "-s -w" -o "$work/bin/etcd" ./etcd
mkdir -p "$(dirname "$dest")"
rm -rf "$dest"
mv "$work" "$dest"
trap - EXIT
echo "$dest"
