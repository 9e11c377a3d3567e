#!/usr/bin/env bash
# The browser benchmarks in Chromium (end2end/bench): builds the release site; for each
# benchmark starts the release server on a free port with a fresh data folder and a random
# JWT_SECRET, fills a project (5,000 documents for the documents table, one 2,000-chunk
# document for the document page), publishes updates through POST /api/events/publish and
# prints the browser's figures; then the code's size on the wire (scripts/site-sizes.sh).
# Environment: BENCH_DOCUMENTS (5000), BENCH_CHUNKS (2000), BENCH_RATE (1000 events/s),
# BENCH_SECONDS (10). To measure another build in the same sitting, BENCH_SERVER_BIN and
# BENCH_SITE_ROOT name its server binary and site folder (both default to this checkout's
# release build). Arguments go to `playwright test` (a file name picks one benchmark).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
source scripts/common.sh

build_release_site

data_dirs=()
trap 'rm -rf "${data_dirs[@]}"' EXIT
export E2E_SERVER_BIN="${BENCH_SERVER_BIN:-$root/target/release/docpulse}"
export E2E_SITE_ROOT="${BENCH_SITE_ROOT:-$root/target/site}"

# One server per benchmark: its one worker pauses for an hour after splitting a document,
# so a benchmark's documents never wait behind another's.
benchmarks=(documents_table document_page)
if [[ $# -gt 0 ]]; then benchmarks=(""); fi
for benchmark in "${benchmarks[@]}"; do
  E2E_PORT=$(free_port)
  E2E_DATA_DIR=$(mktemp -d -t docpulse-bench.XXXXXX)
  data_dirs+=("$E2E_DATA_DIR")
  JWT_SECRET=$(node -e 'console.log(require("crypto").randomBytes(32).toString("hex"))')
  export E2E_PORT E2E_DATA_DIR JWT_SECRET
  (cd end2end && npx playwright test -c playwright.bench.config.ts ${benchmark:+"$benchmark"} "$@")
done

scripts/site-sizes.sh "$E2E_SITE_ROOT"
