#!/usr/bin/env bash
# End-to-end suite on a kind cluster, for machines with Docker: builds the image, deploys
# CRDs, RBAC, webhook and controller exactly as in a cluster, then runs the same
# integration tests as `make test` against it (those that need direct access to the
# server's port are marked local_only and deselected).
#
#   hack/kind-e2e.sh            # create cluster, deploy, test, delete cluster
#   KEEP_CLUSTER=1 hack/kind-e2e.sh
#
# Not run on the project's development machines: they have no Docker engine.
set -euo pipefail

cd "$(dirname "$0")/.."
cluster=${KIND_CLUSTER_NAME:-registry-v2-e2e}
image=registry-v2/policy:dev
ns=image-registry-system
work=$(mktemp -d)
kubeconfig="$work/kubeconfig"

for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done

cleanup() {
  if [ -z "${KEEP_CLUSTER:-}" ]; then
    kind delete cluster --name "$cluster" >/dev/null 2>&1 || true
  else
    echo "cluster kept: export KUBECONFIG=$kubeconfig"
  fi
}
trap cleanup EXIT

make --no-print-directory venv

kind create cluster --name "$cluster" --kubeconfig "$kubeconfig" --wait 120s
export KUBECONFIG="$kubeconfig"

docker build -t "$image" .
kind load docker-image "$image" --name "$cluster"

kubectl apply -f manifests/crds/
kubectl wait --for=condition=Established --timeout=60s -f manifests/crds/
kubectl apply -f manifests/deploy/00-namespace.yaml -f manifests/deploy/10-rbac.yaml

# The webhook configurations ship without a caBundle: the controller's certificate manager
# creates the Secret image-registry-webhook-tls (CA and serving certificate) and publishes
# the caBundle; the webhook pods start once the Secret exists.
kubectl apply -f manifests/deploy/40-webhook-configurations.yaml
kubectl apply -f manifests/deploy/20-webhook.yaml -f manifests/deploy/25-networkpolicy.yaml \
  -f manifests/deploy/30-controller.yaml
kubectl -n "$ns" rollout status deployment/image-registry-controller --timeout=180s
kubectl -n "$ns" rollout status deployment/image-registry-webhook --timeout=180s

E2E_EXISTING_CLUSTER=true .venv/bin/python -m pytest tests/integration -m "not local_only" "$@"
