# The two commands of the README: `make run` and `make test`. Both install what is missing
# first (scripts/toolchain.sh) and are safe to run again.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c

# Tools built by cargo install, and wasm-opt from end2end's npm packages, ahead of anything
# else on PATH (Debian's older wasm-opt produces WASM that never hydrates).
export PATH := $(CURDIR)/end2end/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)

# CI builds once from a clean clone: incremental caches would only take disk space.
ifdef CI
export CARGO_INCREMENTAL := 0
endif

.PHONY: run test lint unit e2e load-smoke toolchain bench load bench-ui

## Builds the release site and serves it at http://127.0.0.1:3000 (LEPTOS_SITE_ADDR).
run:
	scripts/toolchain.sh
	cargo leptos serve --release --precompress --split

## Formatting, clippy (server and wasm), Rust tests, Playwright in Chromium, then a small
## run of the load tool against a debug server.
test:
	scripts/toolchain.sh --with-browser
	$(MAKE) --no-print-directory lint unit e2e load-smoke

lint:
	cargo fmt --all -- --check
	cargo clippy --locked -p docpulse -p app -p docpulse-load --all-targets -- -D warnings
	cargo clippy --locked -p frontend -p app --target wasm32-unknown-unknown --all-targets -- -D warnings

## Rust tests with a private Redis and PostgreSQL (scripts/with-test-services.sh): everything
## once on SQLite and the in-memory bus (the multi-instance tests use Redis and PostgreSQL),
## then the whole API suite again on Redis and PostgreSQL.
unit:
	scripts/with-test-services.sh bash -c ' \
	    cargo test --locked -p docpulse -p app -p docpulse-load && \
	    TEST_BUS=redis TEST_DATABASE=postgres cargo test --locked -p docpulse --test api'

## Playwright in Chromium; the multi-instance spec uses Redis and PostgreSQL.
e2e:
	scripts/with-test-services.sh scripts/e2e.sh

## docpulse-load against a debug server: it fails on any missing, duplicate or leaked delivery.
load-smoke:
	LOAD_PROFILE=dev scripts/load.sh --connections 200 --projects 4 --rate 50 --duration 3

toolchain:
	scripts/toolchain.sh --with-browser

## The in-process fan-out benchmark (criterion): cost per publish and per delivery.
bench:
	cargo bench --locked --bench fanout

## The end-to-end load benchmark against a release server; see README "Benchmarks".
load:
	scripts/load.sh

## The documents-table benchmark in Chromium against a release server; see docs/ui-benchmark.md.
bench-ui:
	scripts/bench-ui.sh
