#!/usr/bin/env bash
# Builds the vegeta load generator from the Go module in hack/vegeta and caches it outside
# the work tree, keyed by the pinned version and the module's checksums, the way
# hack/build-controlplane.sh caches the control plane. A second run returns at once.
#
# Prints the cache directory (the one holding bin/vegeta) on its last line of stdout.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
mod="$here/vegeta"
version=$(awk '{for (i = 1; i < NF; i++) if ($i == "github.com/tsenart/vegeta/v12") {print $(i + 1); exit}}' "$mod/go.mod")
key=$(cat "$mod/go.mod" "$mod/go.sum" "$mod/tools.go" | sha256sum | cut -c1-12)
cache_root=${REGISTRY_V2_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/registry-v2}
dest="$cache_root/vegeta-$version-$key"

complete() {
  [ -x "$dest/bin/vegeta" ]
}

if complete; then
  echo "$dest"
  exit 0
fi

command -v go >/dev/null || { echo "go is required to build the load generator" >&2; exit 1; }
mkdir -p "$cache_root"
# One builder at a time (the same lock as the control plane's: both fill one cache root).
exec 9>"$cache_root/.build.lock"
flock 9
if complete; then
  echo "$dest"
  exit 0
fi

work=$(mktemp -d "$cache_root/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "building vegeta $version into $dest (first run only; about a minute)" >&2
cd "$mod"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
go build -trimpath -ldflags "-s -w -X main.Version=$version" -o "$work/bin/vegeta" \
  github.com/tsenart/vegeta/v12
mkdir -p "$(dirname "$dest")"
rm -rf "$dest"
mv "$work" "$dest"
trap - EXIT
echo "$dest"
