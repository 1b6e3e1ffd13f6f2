#!/usr/bin/env bash
# Builds the CNCF distribution registry and the crane OCI client from the Go module in
# hack/ocitools and caches them outside the work tree, keyed by the pinned versions and
# the module's checksums (hack/lib/cached-build.sh). A second run returns at once.
#
# Prints the cache directory (the one holding bin/registry and bin/crane) on its last
# line of stdout.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
mod="$here/ocitools"
source "$here/lib/cached-build.sh"
registry_version=$(pinned github.com/distribution/distribution/v3)
crane_version=$(pinned github.com/google/go-containerregistry)
key=$(cache_key "$mod/go.mod" "$mod/go.sum" "$mod/tools.go")

complete() {
  [ -x "$dest/bin/registry" ] && [ -x "$dest/bin/crane" ]
}

# The version variables are the ones each project's own release build sets, so that
# `registry --version` and `crane version` name the pinned release.
build() {
  go build -trimpath \
    -ldflags "-s -w -X github.com/distribution/distribution/v3/version.version=$registry_version" \
    -o "$1/bin/registry" github.com/distribution/distribution/v3/cmd/registry
  go build -trimpath \
    -ldflags "-s -w -X github.com/google/go-containerregistry/cmd/crane/cmd.Version=$crane_version" \
    -o "$1/bin/crane" github.com/google/go-containerregistry/cmd/crane
}

dest="$cache_root/ocitools-$registry_version-$crane_version-$key"
cached_build "$dest" "registry $registry_version and crane $crane_version (a few minutes)"
