#!/usr/bin/env bash
# The documents-table benchmark in Chromium: builds the release site, starts the release
# server on a free port with a fresh data folder and a random JWT_SECRET, fills a project with
# documents, publishes updates through POST /api/events/publish and prints the browser's
# figures; then the release WASM size. Environment: BENCH_DOCUMENTS (5000), BENCH_RATE
# (1000 events/s), BENCH_SECONDS (10). To measure another build in the same sitting,
# BENCH_SERVER_BIN and BENCH_SITE_ROOT name its server binary and site folder (both default
# to this checkout's release build). Arguments go to `playwright test`.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

cargo leptos build --release --precompress --cargo-locked

E2E_PORT=$(node -e '
  const server = require("net").createServer();
  server.listen(0, "127.0.0.1", () => { console.log(server.address().port); server.close(); });
')
E2E_DATA_DIR=$(mktemp -d -t docpulse-bench.XXXXXX)
trap 'rm -rf "$E2E_DATA_DIR"' EXIT
JWT_SECRET=$(node -e 'console.log(require("crypto").randomBytes(32).toString("hex"))')
export E2E_PORT E2E_DATA_DIR JWT_SECRET
export E2E_SERVER_BIN="${BENCH_SERVER_BIN:-$root/target/release/docpulse}"
export E2E_SITE_ROOT="${BENCH_SITE_ROOT:-$root/target/site}"

(cd end2end && npx playwright test -c playwright.bench.config.ts "$@")

# The WASM's name carries its content hash in a release build (`hash-files`).
wasm=$(find "$E2E_SITE_ROOT/pkg" -maxdepth 1 -name 'docpulse*.wasm' | head -n 1)
brotli_size="none"
if [[ -f "$wasm.br" ]]; then brotli_size="$(stat -c %s "$wasm.br") bytes"; fi
echo "release WASM: $(stat -c %s "$wasm") bytes raw, $(gzip -9c "$wasm" | wc -c) bytes gzip -9, brotli as served: $brotli_size"
