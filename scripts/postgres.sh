#!/usr/bin/env bash
# A private PostgreSQL server for the tests: on a free loopback port, trusting local
# connections, durability off (fsync), a new cluster at each start, nothing kept after.
# Safe to run again.
#
#   scripts/postgres.sh start   installs Debian's postgresql if missing, starts the server
#                               (once) and prints the URL of its `docpulse` database
#   scripts/postgres.sh url     prints the URL of the running server
#   scripts/postgres.sh createdb   creates an empty database and prints its URL
#   scripts/postgres.sh stop    stops it
#
# The URL's user may create databases: each test server takes a fresh one.
# PostgreSQL refuses to run as root; as root, the cluster belongs to the `postgres` user
# the package creates, and lives under /tmp where that user can reach it.
set -euo pipefail

cd "$(dirname "$0")/.."
source scripts/common.sh
if [[ "$(id -u)" == 0 ]]; then
    dir="/tmp/docpulse-postgres-$(printf '%s' "$PWD" | md5sum | cut -c1-12)"
    as_owner=(runuser -u postgres --)
else
    dir="$PWD/target/postgres"
    as_owner=()
fi
data="$dir/data"
urlfile="$dir/url"

bin_dir() {
    local found
    found="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    [[ -n "$found" && -x "$found/initdb" ]] && echo "$found"
}

running() {
    [[ -f "$urlfile" && -f "$data/postmaster.pid" ]] &&
        "${as_owner[@]}" "$(bin_dir)/pg_ctl" status -D "$data" >/dev/null 2>&1
}

install() {
    bin_dir >/dev/null && return
    echo "postgres.sh: installing Debian's postgresql" >&2
    apt_install postgresql
}

start() {
    if running; then
        cat "$urlfile"
        return
    fi
    install
    local bin
    bin="$(bin_dir)"
    mkdir -p "$dir"
    [[ -z "${as_owner[*]}" ]] || chown postgres: "$dir"
    rm -rf "$data"
    "${as_owner[@]}" "$bin/initdb" -D "$data" -U docpulse --auth=trust \
        --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        exit 1
    }
    local port attempt
    for attempt in $(seq 1 20); do
        port="$(free_port)"
        # -w waits until the server accepts connections; another process may have won the port.
        if "${as_owner[@]}" "$bin/pg_ctl" start -D "$data" -l "$dir/postgres.log" -w -t 30 \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=400 \
                -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            </dev/null >/dev/null 2>&1; then
            "${as_owner[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U docpulse docpulse
            echo "postgres://docpulse@127.0.0.1:$port/docpulse" >"$urlfile"
            cat "$urlfile"
            return
        fi
    done
    echo "postgres.sh: no PostgreSQL started after $attempt attempts; see $dir/postgres.log" >&2
    exit 1
}

createdb() {
    running || {
        echo "postgres.sh: the server is not running; run $0 start" >&2
        exit 1
    }
    local url name
    url="$(cat "$urlfile")"
    name="test_$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
    "$(bin_dir)/psql" "$url" -qAt -c "CREATE DATABASE $name" >/dev/null
    echo "${url%/*}/$name"
}

stop() {
    if [[ -f "$data/postmaster.pid" ]] && bin_dir >/dev/null; then
        "${as_owner[@]}" "$(bin_dir)/pg_ctl" stop -D "$data" -m fast -w >/dev/null 2>&1 || true
    fi
    rm -rf "$urlfile" "$data"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    url) running && cat "$urlfile" ;;
    createdb) createdb ;;
    *)
        echo "usage: $0 start|url|createdb|stop" >&2
        exit 2
        ;;
esac
