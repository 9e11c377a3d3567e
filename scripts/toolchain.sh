#!/usr/bin/env bash
# Installs what building docpulse needs, skipping whatever is already there.
#
# Usage: scripts/toolchain.sh [--with-browser]
#   --with-browser  also installs Debian's Chromium for the end-to-end tests.
#
# Every tool comes from a package registry (crates.io, npm, Debian): nothing downloads a
# prebuilt binary from elsewhere. Versions are pinned here and in ../shared/TOOLCHAIN.md.
set -euo pipefail

CARGO_LEPTOS_VERSION=0.3.11
# Must equal the `wasm-bindgen = "=…"` pin in frontend/Cargo.toml.
WASM_BINDGEN_VERSION=0.2.130

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
with_browser=false
for argument in "$@"; do
  case "$argument" in
    --with-browser) with_browser=true ;;
    *) echo "unknown argument: $argument" >&2; exit 2 ;;
  esac
done

step() { printf '==> %s\n' "$*"; }

source "$root/scripts/common.sh"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  step "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [ "$(cargo leptos --version 2>/dev/null)" != "cargo-leptos $CARGO_LEPTOS_VERSION" ]; then
  step "building cargo-leptos $CARGO_LEPTOS_VERSION from source (about 15 minutes, once)"
  # Its lockfile asks for a newer rustc than this machine's; it builds and works on 1.95.
  cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked --ignore-rust-version
fi

if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
  step "building wasm-bindgen-cli $WASM_BINDGEN_VERSION from source (about 3 minutes, once)"
  # Not --locked: its lockfile pins a crate version the registry no longer serves.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

# Playwright and binaryen's wasm-opt (release builds) come from end2end/package-lock.json.
lock="$root/end2end/package-lock.json"
installed="$root/end2end/node_modules/.package-lock.json"
if [ ! -f "$installed" ] || [ "$lock" -nt "$installed" ]; then
  step "installing the npm packages of end2end/"
  (cd "$root/end2end" && npm ci --no-audit --no-fund)
fi

if $with_browser && ! command -v chromium >/dev/null; then
  step "installing Debian's Chromium for the browser tests"
  apt_install chromium
fi
