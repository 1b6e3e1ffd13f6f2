#!/usr/bin/env bash
# Builds the project's two images with buildah, no Docker and no registry, and caches them
# outside the work tree as OCI archives that `ctr -n k8s.io images import` names:
#   policy.oci.tar    localhost/registry-v2/policy:KEY, the Dockerfile on the local Debian
#                     base (hack/build-base-image.sh) passed as its BASE build argument;
#   registry.oci.tar  localhost/registry-v2/registry:KEY, FROM scratch: the static
#                     `registry` binary that `make ocitools` builds and a default config.
# KEY hashes every input: the Dockerfile and everything it copies, the base tarball's key,
# the registry binary and config, SOURCE_DATE_EPOCH and this script. A second run with the
# same inputs returns at once.
#
# Reproducible: SOURCE_DATE_EPOCH (default: a fixed time, below) is each image's creation
# time, every file's time in its layers (--timestamp) and the Dockerfile's ARG, so the same
# inputs give the same digests on any machine.
#
# buildah works in a storage of its own under the work directory, removed after the
# build: the host's /var/lib/containers is never touched, no image piles up there with
# each source change, and what a build sees is only what it made.
#
# Prints progress on stderr and the cache directory (images.json and the archives) on its
# last line of stdout. `--print-key` prints only the key and builds nothing (the base and
# the registry binary are still built or found: their outputs are inputs).
set -euo pipefail

mode=${1:-build}
# First, before anything long: without buildah there is nothing to build with.
if [ "$mode" != --print-key ]; then
  command -v buildah >/dev/null || {
    echo "build-images: buildah is required (make nodepackages)" >&2
    exit 1
  }
  [ "$(id -u)" -eq 0 ] || {
    echo "build-images: buildah's overlay storage needs root here" >&2
    exit 1
  }
fi

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
source "$here/lib/cached-build.sh"
# 1980-01-01T00:00:00Z, the earliest time a ZIP entry can hold: pip builds the project's
# wheel with it, and wheels are ZIP files. A fixed time, not the last commit's, so the
# archive is a function of the inputs the key hashes, whatever the commit or the tree.
epoch=${SOURCE_DATE_EPOCH:-315532800}
# The build machine's CA bundle, lent to pip as a build secret: outbound HTTPS may pass
# through a CA only the host trusts. It verifies downloads and changes no byte built.
ca_bundle=${BUILD_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
# The image's user, as the Dockerfile's USER: numeric, not root, owner of its data.
uid=65532

base_dir=$(bash "$here/build-base-image.sh" | tail -n 1)
registry_bin=$(bash "$here/build-ocitools.sh" | tail -n 1)/bin/registry
registry_config="$here/images/registry-config.yml"

# The Dockerfile's build context, as .dockerignore admits it: its allow-list, without
# bytecode (tests/unit/test_dockerfile.py keeps the two equal).
context=(Dockerfile .dockerignore pyproject.toml README.md constraints.txt)
while IFS= read -r -d '' f; do context+=("$f"); done < <(
  cd "$repo" && find cli webhook frontdoor serving controller nodeca kube quota -type f \
    ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | LC_ALL=C sort -z
)
key=$({
  (cd "$repo" && sha256sum "${context[@]}")
  sha256sum "$registry_bin" "$registry_config" "$0" | cut -d' ' -f1
  basename "$base_dir"
  echo "$epoch"
} | sha256sum | cut -c1-12)
if [ "$mode" = --print-key ]; then
  echo "$key"
  exit 0
fi
dest="$cache_root/images-$key"
base_name="localhost/registry-v2/base:${base_dir##*-}"
policy_name="localhost/registry-v2/policy:$key"
registry_name="localhost/registry-v2/registry:$key"

complete() {
  [ -s "$dest/images.json" ] && [ -s "$dest/policy.oci.tar" ] && [ -s "$dest/registry.oci.tar" ]
}

if complete; then
  echo "$dest"
  exit 0
fi
mkdir -p "$cache_root"
exec 7>"$cache_root/.images.lock"
flock 7
if complete; then
  echo "$dest"
  exit 0
fi

work=$(mktemp -d "$cache_root/.images.XXXXXX")
store=(--root "$work/storage" --runroot "$work/run" --storage-driver overlay)
# Containers' overlay mounts and the storage's own live under the work directory: drop
# the containers, unmount what is left, and never let rm cross into another file system.
cleanup() {
  buildah "${store[@]}" rm --all >/dev/null 2>&1 || true
  awk -v w="$work/" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m" || true; done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
started=$SECONDS
step() { echo "[$((SECONDS - started)) s] $*" >&2; }
echo "building the images into $dest (first run only, about 2 minutes)" >&2

step "base $base_name from $(basename "$base_dir")/rootfs.tar.gz"
ctr=$(buildah "${store[@]}" from scratch)
buildah "${store[@]}" add "$ctr" "$base_dir/rootfs.tar.gz" / >/dev/null
buildah "${store[@]}" config \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env LANG=C.UTF-8 --cmd '["/bin/bash"]' \
  --label org.opencontainers.image.title=registry-v2-debian-base "$ctr"
buildah "${store[@]}" commit --quiet --timestamp "$epoch" --rm "$ctr" "$base_name" >/dev/null

step "policy $policy_name from the Dockerfile (pip downloads the pinned wheels)"
secret=()
[ -s "$ca_bundle" ] && secret=(--secret "id=pip-ca,src=$ca_bundle")
# Host networking: pip needs the network, and the default private network would make a
# CNI bridge and NAT rules on the host for the build's few seconds.
buildah "${store[@]}" bud --network host --pull=never --layers=false \
  --timestamp "$epoch" --build-arg "SOURCE_DATE_EPOCH=$epoch" \
  --build-arg "BASE=$base_name" "${secret[@]}" \
  --label "org.opencontainers.image.base.name=$base_name" \
  --file "$repo/Dockerfile" --tag "$policy_name" "$repo" >&2

step "registry $registry_name from $registry_bin"
root="$work/registry-root"
mkdir -p "$root/bin" "$root/etc/distribution" "$root/var/lib/registry" "$root/tmp"
install -m 0755 "$registry_bin" "$root/bin/registry"
install -m 0644 "$registry_config" "$root/etc/distribution/config.yml"
chown "$uid:$uid" "$root/var/lib/registry"
chmod 1777 "$root/tmp"
ctr=$(buildah "${store[@]}" from scratch)
buildah "${store[@]}" add --chown 0:0 "$ctr" "$root/bin" /bin >/dev/null
buildah "${store[@]}" add --chown 0:0 "$ctr" "$root/etc" /etc >/dev/null
buildah "${store[@]}" add --chown "$uid:$uid" "$ctr" "$root/var" /var >/dev/null
buildah "${store[@]}" add --chown 0:0 "$ctr" "$root/tmp" /tmp >/dev/null
# No OpenTelemetry exporter: distribution's default OTLP one dials localhost:4318.
buildah "${store[@]}" config \
  --entrypoint '["/bin/registry"]' --cmd '["serve", "/etc/distribution/config.yml"]' \
  --user "$uid:$uid" --port 5000 --env OTEL_TRACES_EXPORTER=none \
  --label org.opencontainers.image.title=registry-v2-registry \
  --label "org.opencontainers.image.version=$("$registry_bin" --version | awk '{print $3}')" \
  "$ctr"
buildah "${store[@]}" commit --quiet --timestamp "$epoch" --rm "$ctr" "$registry_name" >/dev/null

# oci-archive:FILE:NAME writes NAME as the index entry's org.opencontainers.image.ref.name,
# which `ctr images import` takes as the image's name when it is a full reference.
for image in policy registry; do
  name_var="${image}_name"
  step "archive $work/out/$image.oci.tar"
  mkdir -p "$work/out"
  buildah "${store[@]}" push --quiet "${!name_var}" "oci-archive:$work/out/$image.oci.tar:${!name_var}" >&2
done
cat >"$work/out/images.json" <<EOF
{
  "policy": {"name": "$policy_name", "archive": "policy.oci.tar"},
  "registry": {"name": "$registry_name", "archive": "registry.oci.tar"},
  "source_date_epoch": $epoch
}
EOF
step "done"
mkdir -p "$(dirname "$dest")"
rm -rf "$dest"
mv "$work/out" "$dest"
echo "$dest"
