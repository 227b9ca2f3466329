# Fog's two front doors are `make demo` and `make test`; both run `make setup`
# first, which installs and starts whatever is missing (deploy/dev/setup.sh).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
FORGE := contracts/tools/forge
CARGO_FLAGS := --workspace --locked

.PHONY: all setup build lint fmt artifacts gas-snapshot gas-table bench-exec bench-hub bench-e2e test-deep test test-contracts test-rust demo clean

all: build

## setup: install the toolchain and test fixtures, start dockerd (idempotent)
setup:
	@deploy/dev/setup.sh

## build: compile the contracts and every Rust crate
build: setup
	$(FORGE) build
	cargo build $(CARGO_FLAGS) --all-targets

## lint: formatting and clippy, as CI enforces them
lint: setup
	cargo fmt --all -- --check
	$(FORGE) fmt --check
	cargo clippy $(CARGO_FLAGS) --all-targets -- -D warnings

## fmt: format Rust and Solidity sources in place
fmt: setup
	cargo fmt --all
	$(FORGE) fmt

## artifacts: refresh the committed ABI + bytecode the Rust bindings read
artifacts: setup
	$(FORGE) build
	cd contracts && node tools/artifacts.js

## test-contracts: forge unit, fuzz and invariant tests; gas snapshots and artifacts match
test-contracts: setup
	@mkdir -p .fog
	FORGE_SNAPSHOT_CHECK=true $(FORGE) test 2>&1 | tee .fog/forge-test.log
	cd contracts && node tools/artifacts.js --check

## bench-e2e: a trivial job through fog CLI → hub → miner → Docker → receipt, against `docker run --rm` (docs/e2e.md)
bench-e2e: setup
	cargo build --locked --release --bins
	target/release/e2e-bench

## test-deep: the long fuzz and invariant profile (20,000 fuzz runs, 1,024 x 256 invariant)
test-deep: setup
	FOUNDRY_PROFILE=deep $(FORGE) test

## gas-snapshot: refresh contracts/snapshots/ after a deliberate gas change
gas-snapshot: setup
	$(FORGE) test --match-contract GasTest

## gas-table: whole-transaction gas per operation on a live anvil (docs/gas.md)
gas-table: setup
	cargo run --locked --release -p fog-tests --bin gas-table

## bench-exec: miner executor overhead against a raw `docker run --rm` (docs/executor.md)
bench-exec: setup
	cargo run --locked --release -p fog-tests --bin exec-bench

## bench-hub: scheduler, submissions over HTTP, 10,000 simulated miners (docs/hub.md)
bench-hub: setup
	cargo build --locked --release --bins
	target/release/hub-bench all

## test-rust: every Rust test (unit, property, cross-process)
test-rust: setup
	@mkdir -p .fog
	cargo build $(CARGO_FLAGS) --bins
	cargo test $(CARGO_FLAGS) 2>&1 | tee .fog/cargo-test.log

## test: everything CI checks, closing with one "total: N passed, M failed" line
test: setup lint test-contracts test-rust
	@deploy/dev/test-summary.sh .fog/forge-test.log .fog/cargo-test.log

## demo: the whole marketplace on a local devnet
demo: setup
	@deploy/dev/demo.sh

clean:
	cargo clean
	rm -rf contracts/out contracts/cache
