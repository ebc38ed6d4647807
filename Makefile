# ferry: build, peers, demo and tests. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PEERS := tests/peers
PY := $(CURDIR)/.peers/venv/bin/python

.PHONY: demo test install-peers peers stop-peers build lint unit e2e bench-mirror bench-plan docs docs-check

## Installs Kafka jars, Terraform 1.0.3, OpenTofu, moto and Python test tools into .peers/.
install-peers:
	$(PEERS)/install.sh

## Starts every peer (Kafka A, B, the three-broker C, moto, ministack) on loopback; writes .peers/env.
peers: install-peers
	$(PEERS)/start.sh

stop-peers:
	$(PEERS)/stop.sh

build:
	cargo build --workspace --bins

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(MAKE) docs-check

## Rewrites the generated reference sections of docs/ from `terraform providers schema -json`.
docs: install-peers
	cargo build -p terraform-provider-ferry
	$(PY) tests/tools/schema_docs.py

## Fails when a generated section of docs/ is stale or a resource has no page (part of lint).
docs-check: install-peers
	cargo build -p terraform-provider-ferry
	$(PY) tests/tools/schema_docs.py --check

unit:
	cargo test --workspace

## End-to-end tests through the real CLIs; expects running peers (make peers).
e2e: build
	source .peers/env && cargo test -p ferry-kafka -- --ignored --skip real_msk
	source .peers/env && cd tests/e2e && $(PY) -m pytest -q -p no:cacheprovider -ra

## Everything CI runs: set-up, lint, unit tests, peers, end-to-end tests, peers stopped.
test: install-peers
	$(MAKE) build lint unit
	trap '$(CURDIR)/$(PEERS)/stop.sh' EXIT; $(PEERS)/start.sh && $(MAKE) e2e

## The local demo: peers, provider build, `terraform apply` of examples/topics, the result.
demo: install-peers build
	tests/demo.sh

## No-op plans of 1,000+ ferry_topics: wall time, admin requests, provider memory (prints figures).
bench-plan: install-peers build
	trap '$(CURDIR)/$(PEERS)/stop.sh a' EXIT; $(PEERS)/start.sh a && source .peers/env && $(PY) tests/bench/plan_bench.py

## ferry-mirror vs MirrorMaker 2 vs the brokers' ceiling (prints figures; FERRY_BENCH_GB=2).
bench-mirror: install-peers
	cargo build --release -p ferry-mirror
	trap '$(CURDIR)/$(PEERS)/stop.sh a b' EXIT; $(PEERS)/start.sh a b && source .peers/env && $(PY) tests/bench/mirror_bench.py

.PHONY: k8s-peer stop-k8s-peer

## Opt-in, not part of `make peers`/`make test` yet: builds the k8s peer once per machine (Go build
## of kube-apiserver & co. into ~/.cache/ferry-peers, ~20+ min cold) and starts a one-node
## Kubernetes on loopback (etcd, control plane, containerd, kubelet); writes .peers/k8s/env.
k8s-peer:
	tests/peers/k8s/install.sh
	tests/peers/k8s/start.sh

## Stops exactly what `make k8s-peer` started, with its containers and mounts.
stop-k8s-peer:
	tests/peers/k8s/stop.sh
