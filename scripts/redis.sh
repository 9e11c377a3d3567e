#!/usr/bin/env bash
# A private redis-server for the tests: on a free loopback port, its files under
# target/redis/, nothing persisted. Safe to run again.
#
#   scripts/redis.sh start   installs Debian's redis-server if missing, starts it (once) and
#                            prints its URL
#   scripts/redis.sh url     prints the URL of the running server
#   scripts/redis.sh stop    stops it
#
# The server has 4096 databases, so each test server can take one of its own.
set -euo pipefail

cd "$(dirname "$0")/.."
source scripts/common.sh
dir="$PWD/target/redis"
pidfile="$dir/redis.pid"
urlfile="$dir/url"

running() {
    [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

install() {
    command -v redis-server >/dev/null && return
    echo "redis.sh: installing Debian's redis-server" >&2
    apt_install redis-server
}

start() {
    if running; then
        cat "$urlfile"
        return
    fi
    install
    mkdir -p "$dir"
    local port attempt
    for attempt in $(seq 1 20); do
        port="$(free_port)"
        rm -f "$pidfile"
        redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" \
            --daemonize yes --pidfile "$pidfile" --logfile "$dir/redis.log" \
            --save '' --appendonly no --databases 4096 </dev/null
        # The server answers once it has bound the port; another process may have won it.
        for _ in $(seq 1 50); do
            if redis-cli -p "$port" ping >/dev/null 2>&1; then
                echo "redis://127.0.0.1:$port" >"$urlfile"
                cat "$urlfile"
                return
            fi
            running || break
            sleep 0.1
        done
        stop
    done
    echo "redis.sh: no redis-server started after $attempt attempts; see $dir/redis.log" >&2
    exit 1
}

stop() {
    if running; then
        local pid
        pid="$(cat "$pidfile")"
        kill "$pid"
        while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    fi
    rm -f "$pidfile" "$urlfile"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    url) running && cat "$urlfile" ;;
    *)
        echo "usage: $0 start|url|stop" >&2
        exit 2
        ;;
esac
