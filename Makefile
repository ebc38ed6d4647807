# ferry: build, peers, demo and tests. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PEERS := tests/peers
K8S_PEER := tests/peers/k8s
PY := $(CURDIR)/.peers/venv/bin/python

.PHONY: demo test install-peers peers stop-peers build lint unit e2e e2e-kafka e2e-k8s bench-mirror bench-plan docs docs-check

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

## End-to-end tests through the real CLIs; expects running peers (make peers). The Kafka/MSK ones
## first, then the Kubernetes ones on the k8s peer, which e2e-k8s starts and stops itself.
e2e: e2e-kafka e2e-k8s

## Every end-to-end test but those marked k8s; expects running peers (make peers).
e2e-kafka: build
	source .peers/env && cargo test -p ferry-kafka -- --ignored --skip real_msk
	source .peers/env && cargo test -p terraform-provider-ferry -- --ignored
	source .peers/env && cd tests/e2e && $(PY) -m pytest -q -p no:cacheprovider -ra -m "not k8s"

## The Kubernetes end-to-end tests (marker k8s); expects the Kafka peers running (make peers).
## Waits for the k8s binaries' background build (`make test` starts it) or builds them here
## (a no-op when the per-machine cache is warm), starts the k8s peer, imports the runtime image,
## runs the tests (a missing peer fails them: FERRY_REQUIRE_K8S=1), stops the peer whatever happens.
e2e-k8s: build
	$(K8S_PEER)/build-bg.sh wait
	$(K8S_PEER)/install.sh
	trap '$(CURDIR)/$(K8S_PEER)/stop.sh' EXIT; $(K8S_PEER)/start.sh && \
	  $(K8S_PEER)/image.sh --binary target/debug/ferry-mirror --name ferry.local/ferry-mirror:dev && \
	  source .peers/env && cd tests/e2e && \
	  FERRY_REQUIRE_K8S=1 FERRY_K8S_IMAGE_IMPORTED=1 $(PY) -m pytest -q -p no:cacheprovider -ra -m k8s

## Everything CI runs: set-up, lint, unit tests, peers, end-to-end tests, peers stopped. The k8s
## peer's Go build (~20 min cold, once per machine) starts first, in the background under
## `nice -n 19` (log: .peers/k8s-build/log), overlapping the Rust build and the Kafka e2e; the
## Kubernetes tests run last, after waiting for it. A failed background build fails `make test`.
test:
	$(K8S_PEER)/build-bg.sh start
	$(MAKE) install-peers build lint unit || { $(K8S_PEER)/build-bg.sh stop; exit 1; }
	trap '$(CURDIR)/$(PEERS)/stop.sh; $(CURDIR)/$(K8S_PEER)/build-bg.sh stop' EXIT; \
	  $(PEERS)/start.sh && $(MAKE) e2e

## The local demo: peers, provider build, `terraform apply` of examples/topics, the result.
demo: install-peers build
	tests/demo.sh

## No-op plans of 1,000/3,000/10,000 topics, ferry vs Mongey/terraform-provider-kafka v0.13.1, on
## loopback and over 40 ms: wall time, admin requests, provider memory (prints figures). Runs as
## root: starts its own broker in a network namespace, not the shared peers. FERRY_BENCH_TOPICS,
## FERRY_BENCH_PROVIDERS, FERRY_BENCH_LINKS, FERRY_BENCH_MONGEY_40MS_MAX (see plan_bench.py).
bench-plan: install-peers build
	$(PY) tests/bench/plan_bench.py

## ferry-mirror vs MirrorMaker 2 vs the brokers' ceiling (prints figures; FERRY_BENCH_GB=2).
bench-mirror: install-peers
	cargo build --release -p ferry-mirror
	trap '$(CURDIR)/$(PEERS)/stop.sh a b' EXIT; $(PEERS)/start.sh a b && source .peers/env && $(PY) tests/bench/mirror_bench.py

.PHONY: k8s-peer stop-k8s-peer

## For running the Kubernetes tests by hand (`make test` and `make e2e-k8s` start and stop it
## themselves): builds the k8s peer once per machine (Go build of kube-apiserver & co. into
## ~/.cache/ferry-peers, ~20 min cold) and starts a one-node Kubernetes on loopback (etcd,
## control plane, containerd, kubelet); writes .peers/k8s/env.
k8s-peer:
	$(K8S_PEER)/install.sh
	$(K8S_PEER)/start.sh

## Stops exactly what `make k8s-peer` started, with its containers and mounts.
stop-k8s-peer:
	$(K8S_PEER)/stop.sh
