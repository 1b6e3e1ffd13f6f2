#!/usr/bin/env bash
# Fetches the CustomResourceDefinitions of the add-ons two install overlays use
# (cert-manager's Issuer and Certificate, prometheus-operator's ServiceMonitor and
# PrometheusRule), so that tests/integration/test_manifests.py can dry-run those overlays
# against the local control plane. They come from the projects' Go modules through the Go
# module proxy (the one registry the development machines reach), pinned by version and
# by the module's checksum, and are cached outside the work tree like the control plane.
#
# Prints the cache directory (holding cert-manager/ and prometheus-operator/) on its last
# line of stdout.
set -euo pipefail

# Pinned releases and the go.sum lines ("h1:" hashes) of their module zips.
cert_manager_module=github.com/cert-manager/cert-manager
cert_manager_version=v1.21.2
cert_manager_sum=h1:UWgoYM+KLNtRlqmoWOKjKBOBUPVHeepQ6/ac3ERJW68=
cert_manager_crds=deploy/crds
prometheus_operator_module=github.com/prometheus-operator/prometheus-operator
prometheus_operator_version=v0.85.0
prometheus_operator_sum=h1:M5xLCLEoaW2IJfnuCwFzzpL+jSVQu3KGT84Pye+fW8s=
prometheus_operator_crds=example/prometheus-operator-crd

cache_root=${REGISTRY_V2_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/registry-v2}
dest="$cache_root/addon-crds-cert-manager-$cert_manager_version-prometheus-operator-$prometheus_operator_version"

complete() {
  compgen -G "$dest/cert-manager/*.yaml" >/dev/null &&
    compgen -G "$dest/prometheus-operator/*.yaml" >/dev/null
}

if complete; then
  echo "$dest"
  exit 0
fi

command -v go >/dev/null || { echo "go is required to fetch the add-on CRDs" >&2; exit 1; }
mkdir -p "$cache_root"
work=$(mktemp -d "$cache_root/.addon-crds.XXXXXX")
trap 'rm -rf "$work"' EXIT

# copy <module> <version> <h1 sum> <directory in the module> <target>
copy() {
  local json dir sum
  echo "  go mod download $1@$2" >&2
  # Outside any module, so no go.mod of this repository is consulted or changed.
  json=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "$1@$2")
  sum=$(sed -n 's/^[[:space:]]*"Sum": "\(.*\)",\{0,1\}$/\1/p' <<<"$json")
  dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$json")
  if [ "$sum" != "$3" ]; then
    echo "checksum mismatch for $1@$2: got $sum, pinned $3" >&2
    exit 1
  fi
  mkdir -p "$work/$5"
  cp "$dir/$4"/*.yaml "$work/$5/"
  chmod 0644 "$work/$5"/*.yaml  # the module cache is read-only
}

echo "fetching add-on CRDs into $dest (first run only)" >&2
copy "$cert_manager_module" "$cert_manager_version" "$cert_manager_sum" \
  "$cert_manager_crds" cert-manager
copy "$prometheus_operator_module" "$prometheus_operator_version" "$prometheus_operator_sum" \
  "$prometheus_operator_crds" prometheus-operator
rm -rf "$dest"
mv "$work" "$dest"
trap - EXIT
echo "$dest"
