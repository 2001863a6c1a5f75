#!/bin/bash
# tests/helpers/pg.sh - a throwaway PostgreSQL cluster for tests (ctest fixture "pg").
#   pg.sh start DIR   initdb into DIR/data, listen on 127.0.0.1 at a free port (unix socket
#                     in DIR), fsync off, trust auth, create database weir_test; prints the
#                     URL postgresql://postgres@127.0.0.1:PORT/weir_test and writes it to DIR/url
#   pg.sh stop DIR    stops the cluster and removes its data
# initdb and postgres refuse to run as root, so as root they run as the `postgres` user.
# PGBIN overrides the folder of the server binaries (default: PostgreSQL 15 on Debian).
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGUSER_OS=${PGUSER_OS:-postgres}

usage() {
    echo "usage: pg.sh start|stop DIR" >&2
    exit 2
}

[ $# -eq 2 ] || usage
cmd=$1
dir=$2

# Runs a server binary as the cluster owner.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$PGUSER_OS" -- "$@"
    else
        "$@"
    fi
}

start() {
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ "$(id -u)" -eq 0 ]; then
        chown "$PGUSER_OS" "$dir"
    fi
    as_owner "$PGBIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C \
        --no-sync >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        echo "pg.sh: initdb into '$dir/data' failed" >&2
        exit 1
    }
    # The server binds the port itself, so a port taken between our pick and its start is
    # simply retried with another.
    local port=
    for _ in $(seq 1 20); do
        local try=$((20000 + RANDOM % 40000))
        if as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
            -o "-p $try -k $dir -c listen_addresses=127.0.0.1 -c fsync=off \
-c synchronous_commit=off -c full_page_writes=off -c max_connections=100" \
            start >/dev/null 2>&1; then
            port=$try
            break
        fi
    done
    if [ -z "$port" ]; then
        tail -n 20 "$dir/server.log" >&2 || true
        echo "pg.sh: cannot start postgresql in '$dir'" >&2
        exit 1
    fi
    "$PGBIN/createdb" -h 127.0.0.1 -p "$port" -U postgres weir_test
    local url="postgresql://postgres@127.0.0.1:$port/weir_test"
    echo "$url" >"$dir/url"
    echo "$url"
}

stop() {
    if [ -d "$dir/data" ]; then
        as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 ||
            as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

case "$cmd" in
start) start ;;
stop) stop ;;
*) usage ;;
esac
