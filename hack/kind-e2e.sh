#!/usr/bin/env bash
# End-to-end suite on a kind cluster, for machines with Docker: builds the image, deploys
# CRDs, RBAC, webhook and controller exactly as in a cluster (kubectl apply -k
# manifests/overlays/standalone), then runs the same
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

# The image the manifests name (components/release sets its tag).
overlay=manifests/overlays/standalone
image=$(kubectl kustomize "$overlay" | sed -n 's|^ *image: \(registry-v2/policy:.*\)$|\1|p' | head -n 1)
docker build -t "$image" .
kind load docker-image "$image" --name "$cluster"

kubectl apply -k "$overlay"
kubectl wait --for=condition=Established --timeout=60s crd -l app.kubernetes.io/part-of=registry-v2

# The webhook configurations ship without a caBundle and no TLS Secret is shipped: the
# controller's certificate manager creates the Secret image-registry-webhook-tls and
# publishes the caBundle; the webhook pods start once the Secret exists.
kubectl -n "$ns" rollout status deployment/image-registry-controller --timeout=180s
kubectl -n "$ns" rollout status deployment/image-registry-webhook --timeout=180s

E2E_EXISTING_CLUSTER=true .venv/bin/python -m pytest tests/integration -m "not local_only" "$@"
