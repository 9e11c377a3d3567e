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
# LOAD_RESTART_AFTER=<seconds> stops the server with SIGTERM that long after it started and
# starts it again on the same port, Redis and data (the Redis bus, so history survives), and
# runs docpulse-load with --resume: the report then says how the streams came back and
# whether any event was lost.
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
restart_after=${LOAD_RESTART_AFTER:-}
[[ $instances -gt 1 || -n $restart_after ]] && bus=redis
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
# The restarted server's pid, written by the restart below (a background job of its own).
restarted_pid_file=$(mktemp)
cleanup() {
  if [[ -s $restarted_pid_file ]]; then servers+=("$(cat "$restarted_pid_file")"); fi
  for server in "${servers[@]}"; do kill "$server" 2>/dev/null || true; done
  for server in "${servers[@]}"; do
    wait "$server" 2>/dev/null || while kill -0 "$server" 2>/dev/null; do sleep 0.1; done
  done
  rm -rf "${data_dirs[@]}" "$restarted_pid_file"
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

# Starts a server on `$1` (a port) with data folder `$2`, in the background.
start_server() {
  env JWT_SECRET="$secret" DATA_DIR="$2" LEPTOS_SITE_ADDR="127.0.0.1:$1" \
    RUST_LOG="${RUST_LOG:-warn}" "${redis_env[@]}" "${LOAD_SERVER_BIN:-$bin_dir/docpulse}" &
}

# Waits until the server on port `$1` answers /healthz (at most 10 s).
wait_until_ready() {
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return
    sleep 0.1
  done
}

urls=()
ports=()
for _ in $(seq "$instances"); do
  data_dir=$(mktemp -d)
  data_dirs+=("$data_dir")
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  start_server "$port" "$data_dir"
  servers+=($!)
  ports+=("$port")
  wait_until_ready "$port"
  urls+=(--url "http://127.0.0.1:$port")
done

measure=()
[[ $instances -eq 1 && -z $restart_after ]] && measure=(--server-pid "${servers[0]}")
if [[ $# -eq 0 ]]; then
  set -- --connections 10000 --projects 100 --rate 500 --duration 60
fi
resume=()
if [[ -n $restart_after ]]; then
  resume=(--resume)
  (
    sleep "$restart_after"
    echo "restart: SIGTERM to the server at $(date +%T.%N | cut -c1-12)" >&2
    kill -TERM "${servers[0]}"
    while kill -0 "${servers[0]}" 2>/dev/null; do sleep 0.05; done
    echo "restart: the server exited at $(date +%T.%N | cut -c1-12); starting it again" >&2
    start_server "${ports[0]}" "${data_dirs[0]}"
    echo $! >"$restarted_pid_file"
    wait_until_ready "${ports[0]}"
    echo "restart: the server answers again at $(date +%T.%N | cut -c1-12)" >&2
  ) &
fi
"$bin_dir/docpulse-load" "${urls[@]}" --jwt-secret "$secret" "${measure[@]}" "${resume[@]}" "$@"
