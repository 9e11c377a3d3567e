# Sourced by the scripts that install Debian packages, start private test servers or build
# the release site.

# Builds the release site as `make run` serves it: precompressed, content-hashed names, and
# each lazily loaded page a module of its own (`--split`: the server's pages name those).
build_release_site() {
    cargo leptos build --release --precompress --cargo-locked --split
}

# Installs Debian packages "$@", with sudo unless root, without asking.
apt_install() {
    local sudo=()
    [[ "$(id -u)" == 0 ]] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq </dev/null >&2
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" </dev/null >&2
}

# Prints a random loopback port in 20000-39999 that nothing listens on now (a server
# started on it may still lose it to another process: callers try again).
free_port() {
    local port
    while true; do
        port=$((20000 + (RANDOM % 20000)))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
}
