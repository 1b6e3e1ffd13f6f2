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

# Serving certificate for the Service's DNS names, signed by a fresh CA.
.venv/bin/python - "$work/tls" <<'PY'
import sys
from pathlib import Path
from webhook import devcerts
devcerts.ensure(Path(sys.argv[1]), devcerts.serving_hosts("image-registry-webhook", "image-registry-system"))
PY
kubectl -n "$ns" create secret generic image-registry-webhook-tls \
  --from-file=tls.crt="$work/tls/tls.crt" \
  --from-file=tls.key="$work/tls/tls.key" \
  --from-file=ca.crt="$work/tls/ca.crt"

kubectl -n "$ns" rollout status deployment/image-registry-webhook --timeout=180s
kubectl -n "$ns" rollout status deployment/image-registry-controller --timeout=180s
# The webhook configurations, with the CA that signed the serving certificate (the
# serving pods have no right to write them).
.venv/bin/python -m cli webhook-configurations --namespace "$ns" --ca-file "$work/tls/ca.crt" \
  | kubectl apply -f -

E2E_EXISTING_CLUSTER=true .venv/bin/python -m pytest tests/integration -m "not local_only" "$@"
