#!/usr/bin/env bash
# A throw-away PostgreSQL cluster on a Unix socket, owned by the postgres OS user (the server
# refuses to run as root).
#   scripts/cluster.sh start DIR [PORT]   initdb (if needed) and start; prints PGHOST/PGPORT exports
#   scripts/cluster.sh stop DIR           stop and remove DIR
# LISTEN_ADDRESSES (default: none, Unix socket only) may name 127.0.0.1 for clients that need TCP.
set -euo pipefail

# PG_BIN (default: the main major's, see postgres.sh) picks the server.
source "$(dirname "$0")/postgres.sh"
# runuser lives in /usr/sbin, which a bare PATH may lack.
export PATH=$PATH:/usr/sbin:/sbin
action=${1:?usage: cluster.sh start|stop DIR [PORT]}
dir=${2:?usage: cluster.sh start|stop DIR [PORT]}
port=${3:-54329}

as_postgres() {
    if [[ $(id -un) == postgres ]]; then "$@"; else runuser -u postgres -- "$@"; fi
}

case $action in
start)
    install -d -o postgres -g postgres -m 700 "$dir"
    if [[ ! -f $dir/data/PG_VERSION ]]; then
        as_postgres "$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$dir/initdb.log"
    fi
    # RUST_BACKTRACE in the server's environment would add backtraces to error DETAILs.
    env -u RUST_BACKTRACE runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
        -o "-p $port -k $dir -c listen_addresses='${LISTEN_ADDRESSES:-}' -c fsync=off -c max_connections=60" start >/dev/null
    echo "export PGHOST=$dir PGPORT=$port PGUSER=postgres"
    ;;
stop)
    if [[ -f $dir/data/postmaster.pid ]]; then
        as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: cluster.sh start|stop DIR [PORT]" >&2
    exit 2
    ;;
esac
