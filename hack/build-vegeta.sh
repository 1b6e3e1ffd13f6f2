#!/usr/bin/env bash
# Builds the vegeta load generator from the Go module in hack/vegeta and caches it outside
# the work tree, keyed by the pinned version and the module's checksums
# (hack/lib/cached-build.sh). A second run returns at once.
#
# Prints the cache directory (the one holding bin/vegeta) on its last line of stdout.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
mod="$here/vegeta"
source "$here/lib/cached-build.sh"
version=$(pinned github.com/tsenart/vegeta/v12)
key=$(cache_key "$mod/go.mod" "$mod/go.sum" "$mod/tools.go")

complete() {
  [ -x "$dest/bin/vegeta" ]
}

build() {
  go build -trimpath -ldflags "-s -w -X main.Version=$version" -o "$1/bin/vegeta" \
    github.com/tsenart/vegeta/v12
}

dest="$cache_root/vegeta-$version-$key"
cached_build "$dest" "vegeta $version (about a minute)"
