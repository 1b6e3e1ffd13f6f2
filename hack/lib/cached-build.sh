# Sourced by hack/build-*.sh: build Go commands once into a cache outside the work tree.
#
# pinned MODULE            the version go.mod (in $mod) pins for MODULE
# cache_key FILE...        12 hex characters of the files' sha256: the build's inputs
# cached_build DEST WHAT   print DEST if `complete` (the caller's function) says the
#                          binaries are there; else, holding the cache root's lock (one
#                          builder at a time: a second caller waits, then finds them),
#                          run the caller's `build WORK` into a fresh directory, move it
#                          to DEST and print DEST. The last line of stdout is the cache.

source "$(dirname "${BASH_SOURCE[0]}")/progress.sh"

cache_root=${REGISTRY_V2_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/registry-v2}

pinned() {
  awk -v m="$1" '{for (i = 1; i < NF; i++) if ($i == m) {print $(i + 1); exit}}' "$mod/go.mod"
}

cache_key() {
  cat "$@" | sha256sum | cut -c1-12
}

cached_build() {
  local dest=$1 what=$2
  if complete; then
    echo "$dest"
    return 0
  fi
  command -v go >/dev/null || { echo "go is required to build $what" >&2; exit 1; }
  mkdir -p "$cache_root"
  exec 9>"$cache_root/.build.lock"
  flock 9
  if complete; then
    echo "$dest"
    return 0
  fi
  work=$(mktemp -d "$cache_root/.build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  echo "building $what into $dest (first run only)" >&2
  (cd "$mod" && export CGO_ENABLED=0 GOFLAGS=-mod=mod && with_progress "building $what" build "$work")
  mkdir -p "$(dirname "$dest")"
  rm -rf "$dest"
  mv "$work" "$dest"
  trap - EXIT
  echo "$dest"
}
