#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the sink's tests and benchmark, from Debian's
# postgresql package (/usr/lib/postgresql/*/bin). It listens on a Unix socket in DIR only,
# never on the network.
#
#   tests/postgres.sh start DIR     initdb into DIR (when new) and start the server
#   tests/postgres.sh stop DIR      stop it
#   tests/postgres.sh restart DIR   stop it at once, as a crash would, then start it again
#   tests/postgres.sh url DIR       print the URL for [sink] postgres (database "postgres")
#
# As root it runs the server as the unprivileged user `nobody` (PostgreSQL refuses to run
# as root). Durability against power loss is relaxed (fsync off): a test cluster never
# outlives its machine. Commits stay synchronous, so a restart (even an immediate one, as a
# crash) keeps every commit PostgreSQL acknowledged.
# YIZHAN_PG_DURABLE=1 keeps PostgreSQL's defaults instead (fsync and full page writes), as
# `yizhan bench sink` is measured.
set -euo pipefail

command=${1:-}
dir=${2:-}
if [ -z "$command" ] || [ -z "$dir" ]; then
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bin" ] || [ ! -x "$bin/pg_ctl" ]; then
    echo "postgres.sh: no PostgreSQL server under /usr/lib/postgresql/*/bin; install Debian's postgresql package (./test.sh does)" >&2
    exit 1
fi

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u nobody -- "$@"
    else
        "$@"
    fi
}

start() {
    local options="-c listen_addresses='' -k $dir -c max_connections=200"
    if [ "${YIZHAN_PG_DURABLE:-0}" != 1 ]; then
        options="$options -c fsync=off -c full_page_writes=off"
    fi
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -s -o "$options" start
}

case "$command" in
    start)
        mkdir -p "$dir"
        if [ "$(id -u)" = 0 ]; then
            chown nobody "$dir"
        fi
        if [ ! -f "$dir/data/PG_VERSION" ]; then
            as_owner "$bin/initdb" -D "$dir/data" -U yizhan -A trust -E UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1 ||
                { cat "$dir/initdb.log" >&2; exit 1; }
        fi
        start
        ;;
    stop)
        as_owner "$bin/pg_ctl" -D "$dir/data" -w -t 60 -s -m fast stop
        ;;
    restart)
        as_owner "$bin/pg_ctl" -D "$dir/data" -w -t 60 -s -m immediate stop
        start
        ;;
    url)
        echo "postgres://yizhan@localhost/postgres?host=$dir"
        ;;
    *)
        echo "postgres.sh: unknown command $command (start, stop, restart, url)" >&2
        exit 2
        ;;
esac
