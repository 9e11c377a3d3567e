#!/usr/bin/env bash
# The load benchmark: a release server on a free port with a fresh data folder, then
# docpulse-load against it, which prints the figures. Arguments go to docpulse-load (see
# `target/release/docpulse-load --help`); without any, the run the README reports:
# 10,000 streams over 100 projects, 500 events/s for 60 s.
# LOAD_PROFILE=dev runs debug builds instead (the smoke run of `make test`).
# LOAD_BUS=redis runs the server on the Redis event bus (a private redis-server from
# scripts/redis.sh); LOAD_INSTANCES=2 runs two servers on that Redis, the streams and the
# publishers split between them (the server's memory and CPU are then not measured).
# LOAD_SERVER_BIN=/path/to/docpulse runs that server binary instead of the one built here, so
# that two builds (before and after a change) are measured by the same tool in one sitting.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${LOAD_PROFILE:-release}
case $profile in
  release) build_flags=(--release); bin_dir=target/release ;;
  dev) build_flags=(); bin_dir=target/debug ;;
  *) echo "LOAD_PROFILE must be release or dev, got $profile" >&2; exit 2 ;;
esac
instances=${LOAD_INSTANCES:-1}
bus=${LOAD_BUS:-memory}
[[ $instances -gt 1 ]] && bus=redis
case $bus in
  memory | redis) ;;
  *) echo "LOAD_BUS must be memory or redis, got $bus" >&2; exit 2 ;;
esac
cargo build "${build_flags[@]}" --locked -p docpulse --bin docpulse
cargo build "${build_flags[@]}" --locked -p docpulse-load

secret=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
data_dirs=()
servers=()
stop_redis=false
cleanup() {
  for server in "${servers[@]}"; do kill "$server" 2>/dev/null || true; done
  for server in "${servers[@]}"; do wait "$server" 2>/dev/null || true; done
  rm -rf "${data_dirs[@]}"
  if $stop_redis; then scripts/redis.sh stop; fi
}
trap cleanup EXIT

redis_env=()
if [[ $bus == redis ]]; then
  if ! scripts/redis.sh url >/dev/null; then stop_redis=true; fi
  # The last of the private server's databases, emptied: the tests hand out the others.
  redis_url="$(scripts/redis.sh start)/4095"
  redis-cli -u "$redis_url" flushdb >/dev/null
  redis_env=(REDIS_URL="$redis_url")
fi

urls=()
for _ in $(seq "$instances"); do
  data_dir=$(mktemp -d)
  data_dirs+=("$data_dir")
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  env JWT_SECRET="$secret" DATA_DIR="$data_dir" LEPTOS_SITE_ADDR="127.0.0.1:$port" \
    RUST_LOG="${RUST_LOG:-warn}" "${redis_env[@]}" "${LOAD_SERVER_BIN:-$bin_dir/docpulse}" &
  servers+=($!)
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  urls+=(--url "http://127.0.0.1:$port")
done

measure=()
[[ $instances -eq 1 ]] && measure=(--server-pid "${servers[0]}")
if [[ $# -eq 0 ]]; then
  set -- --connections 10000 --projects 100 --rate 500 --duration 60
fi
"$bin_dir/docpulse-load" "${urls[@]}" --jwt-secret "$secret" "${measure[@]}" "$@"
