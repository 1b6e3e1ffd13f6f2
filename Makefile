# The two commands a newcomer needs: `make dev` and `make test`. Everything they need is
# installed by the targets below (a venv in .venv, control-plane binaries in the cache).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | sha256sum | cut -c1-12)
PYTEST_ARGS ?=
FUZZ_BODIES ?= 100000

.PHONY: venv lock dev attacks test e2e unit integration fuzz lint typecheck controlplane nodebinaries ocitools loadgen bench mutation clean

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "python3 (3.11+) is required"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --constraint constraints.txt -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

## Re-pin constraints.txt to the newest releases pyproject.toml allows (then run make test).
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet -e '.[dev]'
	{ sed -n '/^#/p' constraints.txt; .venv-lock/bin/python -m pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf .venv-lock

## Build (first run: 6-10 min on 2 cores, the longest part of README's first run) or reuse the cached etcd, kube-apiserver, kube-controller-manager, kubectl.
controlplane:
	@command -v go >/dev/null || { echo "Go is required to build the local control plane"; exit 1; }
	@bash hack/build-controlplane.sh >/dev/null

## Build (first run: about 40 s once the control plane is built, 3 min with a cold Go cache) or reuse the cached kubelet,
## kube-scheduler and kube-proxy (the control plane's pinned module) and the pause binary.
nodebinaries:
	@command -v go >/dev/null || { echo "Go is required to build the node"; exit 1; }
	@bash hack/build-node.sh >/dev/null

## Install, only if missing, Debian's containerd, runc, CNI plugins, buildah and debootstrap
## (first run: about 20 s, as root; a warm run needs no network and returns at once).
.PHONY: nodepackages
nodepackages:
	@bash hack/install-node-packages.sh

## Build (first run: about 2.5 min) or reuse the cached CNCF distribution registry and the
## crane OCI client (hack/ocitools) that the dev stack and the tests run.
ocitools:
	@command -v go >/dev/null || { echo "Go is required to build the registry and crane"; exit 1; }
	@bash hack/build-ocitools.sh >/dev/null

## Build (first run: about 4 min, as root) or reuse the cached images a local node imports:
## the service's from the Dockerfile on a debootstrapped Debian base, the registry's from the
## ocitools binary, as OCI archives (hack/build-images.sh prints where). Needs buildah and
## debootstrap: make nodepackages installs them.
.PHONY: images
images: ocitools
	@command -v buildah >/dev/null || { echo "buildah is required to build the images: make nodepackages"; exit 1; }
	@bash hack/build-images.sh >/dev/null

## Control plane + CRDs + webhook + controller + front door + a node (root), in the foreground
## until Ctrl-C. DEV_ARGS=--no-node: no node (no root needed; pods stay Pending).
DEV_ARGS ?=
dev: $(STAMP) controlplane ocitools $(if $(findstring --no-node,$(DEV_ARGS)),,nodepackages nodebinaries)
	$(PY) -m localcluster $(DEV_ARGS)

## Issue 17's reproductions against a running `make dev` (another terminal): sent, got, PASS/FAIL;
## ITEMS="2 7" runs only those.
attacks: $(STAMP)
	$(PY) -m localcluster.attacks $(ITEMS)

## Lint, type-check, unit tests and integration tests against the real local control plane,
## then the end-to-end suite on a real node (make e2e).
test: $(STAMP) controlplane ocitools lint typecheck
	$(PY) -m pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory e2e

## The service as pods on a real node (root): the images built from the Dockerfile, the
## shipped overlay applied as docs/install.md says, the user's loop from push to running pod.
e2e: $(STAMP) controlplane ocitools nodepackages nodebinaries images
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

unit: $(STAMP)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

integration: $(STAMP) controlplane ocitools
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

## The long fuzz campaign against the TLS server (not in CI: a few minutes on 2 cores);
## prints bodies sent, statuses and the server's RSS. `make test` sends a few hundred.
fuzz: $(STAMP)
	FUZZ_BODIES=$(FUZZ_BODIES) $(PY) -m pytest tests/fuzz/test_campaign.py $(PYTEST_ARGS)

## Lint, format check, and the import contracts of the layout (pyproject.toml, [tool.importlinter]).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

typecheck: $(STAMP)
	$(VENV)/bin/mypy

## Build (first run: about a minute) or reuse the cached vegeta load generator of `make bench`.
loadgen:
	@command -v go >/dev/null || { echo "Go is required to build the load generator"; exit 1; }
	@bash hack/build-vegeta.sh >/dev/null

bench: $(STAMP) controlplane ocitools loadgen
	$(PY) -m bench

## Issue 20's release time after delete: ours (alauda.io/imagestreams) next to native quota's
## (count/configmaps), in one run on its own local stack (about 1 min); not part of make test.
.PHONY: quota-release
quota-release: $(STAMP) controlplane
	$(PY) -m bench.release

## A front door delete among 2,000 unrelated Images, from the caches next to the live lists it
## made before (about 2 min on its own stack); not part of make test.
.PHONY: delete-bench
delete-bench: $(STAMP) controlplane
	$(PY) -m bench.deletes

## Mutation testing of the pure rules and the HTTP adapters ([tool.mutmut] in pyproject.toml),
## judged by the unit suite. Slow (minutes), so not part of `make test`. Prints figures per
## module, then every mutant no test killed.
mutation: $(STAMP)
	rm -rf mutants
	FUZZ_EXAMPLES=15 HYPOTHESIS_PROFILE=ci $(VENV)/bin/mutmut run > /dev/null
	$(PY) hack/mutation_summary.py $(VENV)/bin/mutmut

clean:
	rm -rf $(VENV) .local .pytest_cache .mypy_cache .ruff_cache mutants
