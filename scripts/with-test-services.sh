#!/usr/bin/env bash
# Runs a command with the private Redis and PostgreSQL of the tests (scripts/redis.sh,
# scripts/postgres.sh) started and their URLs in TEST_REDIS_URL and TEST_POSTGRES_URL.
# Whatever it started it stops afterwards, also on failure; a server that was already
# running is left running.
#
#   scripts/with-test-services.sh cargo test
set -euo pipefail

scripts="$(cd "$(dirname "$0")" && pwd)"
started=()
cleanup() {
    local service
    for service in "${started[@]}"; do
        "$scripts/$service.sh" stop || true
    done
}
trap cleanup EXIT

for service in redis postgres; do
    "$scripts/$service.sh" url >/dev/null || started+=("$service")
done
TEST_REDIS_URL="$("$scripts/redis.sh" start)"
TEST_POSTGRES_URL="$("$scripts/postgres.sh" start)"
export TEST_REDIS_URL TEST_POSTGRES_URL

"$@"
