#!/usr/bin/env bash
# The load benchmark: a release server on a free port with a fresh data folder, then
# docpulse-load against it, which prints the figures. Arguments go to docpulse-load (see
# `target/release/docpulse-load --help`); without any, the run the README reports:
# 10,000 streams over 100 projects, 500 events/s for 60 s.
# LOAD_PROFILE=dev runs debug builds instead (the smoke run of `make test`).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${LOAD_PROFILE:-release}
case $profile in
  release) build_flags=(--release); bin_dir=target/release ;;
  dev) build_flags=(); bin_dir=target/debug ;;
  *) echo "LOAD_PROFILE must be release or dev, got $profile" >&2; exit 2 ;;
esac
cargo build "${build_flags[@]}" --locked -p docpulse --bin docpulse
cargo build "${build_flags[@]}" --locked -p docpulse-load

data_dir=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
secret=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')

JWT_SECRET=$secret DATA_DIR=$data_dir LEPTOS_SITE_ADDR=127.0.0.1:$port RUST_LOG=${RUST_LOG:-warn} \
  "$bin_dir/docpulse" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$data_dir"' EXIT

for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done

if [[ $# -eq 0 ]]; then
  set -- --connections 10000 --projects 100 --rate 500 --duration 60
fi
"$bin_dir/docpulse-load" --url "http://127.0.0.1:$port" --jwt-secret "$secret" \
  --server-pid "$server" "$@"
