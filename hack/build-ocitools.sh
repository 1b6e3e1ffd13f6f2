#!/usr/bin/env bash
# Builds the CNCF distribution registry and the crane OCI client from the Go module in
# hack/ocitools and caches them outside the work tree, keyed by the pinned versions and
# the module's checksums, the way hack/build-vegeta.sh caches vegeta. A second run
# returns at once.
#
# Prints the cache directory (the one holding bin/registry and bin/crane) on its last
# line of stdout.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
mod="$here/ocitools"
pinned() {
  awk -v m="$1" '{for (i = 1; i < NF; i++) if ($i == m) {print $(i + 1); exit}}' "$mod/go.mod"
}
registry_version=$(pinned github.com/distribution/distribution/v3)
crane_version=$(pinned github.com/google/go-containerregistry)
key=$(cat "$mod/go.mod" "$mod/go.sum" "$mod/tools.go" | sha256sum | cut -c1-12)
cache_root=${REGISTRY_V2_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/registry-v2}
dest="$cache_root/ocitools-$registry_version-$crane_version-$key"

complete() {
  [ -x "$dest/bin/registry" ] && [ -x "$dest/bin/crane" ]
}

if complete; then
  echo "$dest"
  exit 0
fi

command -v go >/dev/null || { echo "go is required to build the registry and crane" >&2; exit 1; }
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
echo "building registry $registry_version and crane $crane_version into $dest (first run only; a few minutes)" >&2
cd "$mod"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
# The version variables are the ones each project's own release build sets, so that
# `registry --version` and `crane version` name the pinned release.
go build -trimpath \
  -ldflags "-s -w -X github.com/distribution/distribution/v3/version.version=$registry_version" \
  -o "$work/bin/registry" github.com/distribution/distribution/v3/cmd/registry
go build -trimpath \
  -ldflags "-s -w -X github.com/google/go-containerregistry/cmd/crane/cmd.Version=$crane_version" \
  -o "$work/bin/crane" github.com/google/go-containerregistry/cmd/crane
mkdir -p "$(dirname "$dest")"
rm -rf "$dest"
mv "$work" "$dest"
trap - EXIT
echo "$dest"
