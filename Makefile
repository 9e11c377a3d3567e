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
	cargo leptos serve --release

## Formatting, clippy (server and wasm), Rust tests, Playwright in Chromium, then a small
## run of the load tool against a debug server.
test:
	scripts/toolchain.sh --with-browser
	$(MAKE) --no-print-directory lint unit e2e load-smoke

lint:
	cargo fmt --all -- --check
	cargo clippy --locked -p docpulse -p app -p docpulse-load --all-targets -- -D warnings
	cargo clippy --locked -p frontend -p app --target wasm32-unknown-unknown --all-targets -- -D warnings

## Rust tests with a private Redis and PostgreSQL (scripts/redis.sh, scripts/postgres.sh),
## stopped afterwards even on failure (unless they were running before): everything once on
## SQLite and the in-memory bus (the multi-instance tests use Redis and PostgreSQL), then the
## whole API suite again on Redis and PostgreSQL.
unit:
	if scripts/redis.sh url >/dev/null; then own_redis=false; else own_redis=true; fi; \
	if scripts/postgres.sh url >/dev/null; then own_postgres=false; else own_postgres=true; fi; \
	trap 'if $$own_redis; then scripts/redis.sh stop; fi; \
	      if $$own_postgres; then scripts/postgres.sh stop; fi' EXIT; \
	export TEST_REDIS_URL="$$(scripts/redis.sh start)"; \
	export TEST_POSTGRES_URL="$$(scripts/postgres.sh start)"; \
	cargo test --locked -p docpulse -p app -p docpulse-load; \
	TEST_BUS=redis TEST_DATABASE=postgres cargo test --locked -p docpulse --test api

e2e:
	scripts/e2e.sh

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
