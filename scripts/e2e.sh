#!/usr/bin/env bash
# Builds the release site (precompressed, content-hashed names, as `make run` serves it) and runs the
# Playwright tests against a freshly started release server on a free port with a temporary data
# folder. Arguments go to `playwright test`.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
source scripts/common.sh

build_release_site

E2E_PORT=$(free_port)
E2E_DATA_DIR=$(mktemp -d -t docpulse-e2e.XXXXXX)
trap 'rm -rf "$E2E_DATA_DIR"' EXIT
export E2E_PORT E2E_DATA_DIR
export E2E_SERVER_BIN="$root/target/release/docpulse"

cd end2end
npx playwright test "$@"
