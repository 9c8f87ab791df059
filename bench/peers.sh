#!/usr/bin/env bash
# Compares this extension with the migration tools users would otherwise pick, on the same
# generated migration sets, on one throw-away server (release build, fsync=off):
#   psql, all bodies in one transaction (the floor) | psql, one file at a time
#   dbmate (npm) | sqitch (Debian) | sqlx-cli (cargo) | migrations: load-migrations.sh + up() / apply()
#   and, for the no-op re-run, the loader's statements sent by a client that connects for them
#   (pgbench -C: what an application pays at start-up, its connection included), and the
#   files' sha256sum listing with files_unchanged() then up(), as a client that lists first sends
# Workloads: N_LIGHT light migrations (one INSERT each); N_DDL heavy ones (a table, an index and a
# foreign key each); a no-op re-run with everything applied (the app start-up case); status.
# Prints medians of RUNS runs and ratios to the floor. Not a test: it asserts nothing.
# Installs the peers on first use (sqlx-cli compiles for several minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

N_LIGHT=${N_LIGHT:-1000}
N_DDL=${N_DDL:-300}
RUNS=${RUNS:-3}
DIR=${MIGRATIONS_BENCH_DIR:-/tmp/migrations-peers}
PORT=${MIGRATIONS_BENCH_PORT:-54335}
source scripts/postgres.sh
# PostgreSQL's own psql and tools: Debian's /usr/bin/psql is a Perl wrapper costing ~45 ms a start.
export PATH=$PG_BIN:$PATH
BIN=$PG_BIN
TOOLS=$DIR-tools

bash scripts/setup.sh
echo "installing peers and building the release extension (once)..." >&2
mkdir -p "$TOOLS"
[[ -x $TOOLS/node_modules/.bin/dbmate ]] || (cd "$TOOLS" && npm install --silent --no-audit --no-fund dbmate >/dev/null)
command -v sqitch >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sqitch libdbd-pg-perl >/dev/null; }
command -v sqlx >/dev/null || cargo install sqlx-cli --no-default-features --features postgres,rustls --locked --quiet
cargo pgrx install --release --pg-config "$BIN/pg_config" >/dev/null
DBMATE=$TOOLS/node_modules/.bin/dbmate

bash scripts/cluster.sh stop "$DIR"
WORK=$(mktemp -d)
trap 'bash scripts/cluster.sh stop "$DIR"; rm -rf "$WORK"' EXIT
eval "$(LISTEN_ADDRESSES=127.0.0.1 bash scripts/cluster.sh start "$DIR" "$PORT")"
url() { echo "postgres://postgres@127.0.0.1:$PORT/$1?sslmode=disable"; }

# body KIND I: the SQL of migration I of a workload.
body() {
    case $1 in
    light) echo "INSERT INTO bench_log VALUES ($2);" ;;
    ddl)
        local fk=""
        (($2 > 1)) && fk=", parent bigint REFERENCES t_$(($2 - 1)) (id)"
        echo "CREATE TABLE t_$2 (id bigint PRIMARY KEY, v text$fk); CREATE INDEX t_$2_v ON t_$2 (v);"
        ;;
    esac
}

# generate KIND N: the same migrations in every tool's layout under $WORK/KIND.
generate() {
    local kind=$1 n=$2 root=$WORK/$1
    mkdir -p "$root"/{files,dbmate,sqlx,sqitch/deploy,sqitch/revert,sqitch/verify}
    printf '%%syntax-version=1.0.0\n%%project=bench\n\n' >"$root/sqitch/sqitch.plan"
    printf '[core]\n\tengine = pg\n\tplan_file = sqitch.plan\n\ttop_dir = .\n' >"$root/sqitch/sqitch.conf"
    for i in $(seq 1 "$n"); do
        local version=$((1000000 + i)) sql
        sql=$(body "$kind" "$i")
        echo "$sql" >"$root/files/$(printf '%07d' "$i").sql"
        printf -- '-- migrate:up\n%s\n\n-- migrate:down\n' "$sql" >"$root/dbmate/${version}_m$i.sql"
        echo "$sql" >"$root/sqlx/${version}_m$i.sql"
        printf 'BEGIN;\n%s\nCOMMIT;\n' "$sql" >"$root/sqitch/deploy/m$i.sql"
        echo "SELECT 1;" >"$root/sqitch/revert/m$i.sql"
        echo "SELECT 1;" >"$root/sqitch/verify/m$i.sql"
        echo "m$i 2026-01-01T00:00:00Z Bench <bench@example.com> # migration $i" >>"$root/sqitch/sqitch.plan"
    done
    cat "$root"/files/*.sql >"$root/all.sql"
}

fresh_db() {
    dropdb --if-exists "$1" 2>/dev/null
    createdb "$1"
    psql -X -q -d "$1" -c "CREATE TABLE bench_log (i int)"
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

# How to apply each workload with each tool, against database $db from $root; prints nothing.
apply_with() { # TOOL ROOT DB
    local tool=$1 root=$2 db=$3
    case $tool in
    psql-1) psql -X -q -d "$db" -1 -f "$root/all.sql" ;;
    psql-each) for f in "$root"/files/*.sql; do psql -X -q -d "$db" -f "$f"; done ;;
    dbmate) "$DBMATE" --url "$(url "$db")" --migrations-dir "$root/dbmate" --no-dump-schema migrate ;;
    sqitch) (cd "$root/sqitch" && sqitch deploy --quiet "db:pg://postgres@127.0.0.1:$PORT/$db") ;;
    sqlx) sqlx migrate run --database-url "$(url "$db")" --source "$root/sqlx" ;;
    up) bash scripts/load-migrations.sh --up "$root/dbmate" -d "$db" ;;
    apply) bash scripts/load-migrations.sh --apply "$root/dbmate" -d "$db" ;;
    esac >/dev/null 2>&1
}

status_with() { # TOOL ROOT DB
    local tool=$1 root=$2 db=$3
    case $tool in
    dbmate) "$DBMATE" --url "$(url "$db")" --migrations-dir "$root/dbmate" status ;;
    sqitch) (cd "$root/sqitch" && sqitch status "db:pg://postgres@127.0.0.1:$PORT/$db") ;;
    sqlx) sqlx migrate info --database-url "$(url "$db")" --source "$root/sqlx" ;;
    up | apply) psql -X -q -d "$db" -c "SELECT * FROM migrate.status()" ;;
    esac >/dev/null 2>&1
}

# Whether the last run really applied the whole set: the tools' output is discarded.
verify() { # KIND N
    local done
    if [[ $1 == light ]]; then
        done=$(psql -X -A -t -d bench -c "SELECT count(*) = $2 FROM bench_log")
    else
        done=$(psql -X -A -t -d bench -c "SELECT to_regclass('t_$2') IS NOT NULL")
    fi
    [[ $done == t ]]
}

declare -A result
record() { # KEY TIMES...: the median
    local key=$1
    shift
    result[$key]=$(printf '%s\n' "$@" | median)
}

timed() { # COMMAND...: prints its wall time in ms
    local start
    start=$(now_ms)
    "$@"
    echo $(($(now_ms) - start))
}

fresh() {
    fresh_db bench
    psql -X -q -d bench -c "CREATE EXTENSION migrations"
}

# PEERS (a space-separated subset, psql-1 always first) narrows a run to some of them.
read -r -a tools <<<"${PEERS:-psql-1 psql-each dbmate sqitch sqlx up apply}"
for kind in light ddl; do
    n=$([[ $kind == light ]] && echo "$N_LIGHT" || echo "$N_DDL")
    echo "generating $n $kind migrations..." >&2
    generate "$kind" "$n"
    for tool in "${tools[@]}"; do
        echo "  $kind: $tool" >&2
        times=()
        for _ in $(seq 1 "$RUNS"); do
            fresh
            times+=("$(timed apply_with "$tool" "$WORK/$kind" bench)")
            verify "$kind" "$n" || { echo "$tool did not apply the $kind set" >&2; exit 1; }
        done
        record "$kind/$tool" "${times[@]}"
        # With everything applied (the last run's database): the start-up no-op, and status.
        if [[ $kind == light && $tool != psql-* ]]; then
            noop=() status=()
            for _ in $(seq 1 "$RUNS"); do
                noop+=("$(timed apply_with "$tool" "$WORK/$kind" bench)")
                status+=("$(timed status_with "$tool" "$WORK/$kind" bench)")
            done
            verify "$kind" "$n" || { echo "$tool re-applied the $kind set" >&2; exit 1; }
            record "noop/$tool" "${noop[@]}"
            record "status/$tool" "${status[@]}"
        fi
        if [[ $kind == light && $tool == up ]]; then
            bash scripts/load-migrations.sh --print --up "$WORK/$kind/dbmate" >"$WORK/startup.sql"
            client=$("$BIN/pgbench" -n -C -t $((RUNS * 5)) -f "$WORK/startup.sql" bench 2>/dev/null |
                awk '/latency average/ {print $4}')
            verify "$kind" "$n" || { echo "the client re-applied the $kind set" >&2; exit 1; }
            # What a client that lists its files first sends: the listing, then up().
            { printf 'SELECT migrate.files_unchanged($listing$'; (cd "$WORK/$kind/dbmate" && sha256sum -- *.sql)
              printf '$listing$) AS unchanged;\nSELECT migrate.up();\n'; } >"$WORK/listing.sql"
            [[ $(psql -X -A -t -d bench -f "$WORK/listing.sql" | head -1) == t ]] ||
                { echo "files_unchanged() did not find the $kind set unchanged" >&2; exit 1; }
            listing=$("$BIN/pgbench" -n -C -t $((RUNS * 5)) -f "$WORK/listing.sql" bench 2>/dev/null |
                awk '/latency average/ {print $4}')
        fi
    done
done

{
    printf 'migrations vs. peers: median ms of %d runs; ratio to psql -1 (all bodies in one transaction)\n\n' "$RUNS"
    printf '| tool | %d light | ratio | %d DDL-heavy | ratio | no-op re-run | status |\n' "$N_LIGHT" "$N_DDL"
    printf '|---|---:|---:|---:|---:|---:|---:|\n'
    for tool in "${tools[@]}"; do
        label=$tool
        case $tool in
        psql-1) label="psql, one transaction (floor)" ;;
        psql-each) label="psql, one file at a time" ;;
        up) label="migrations: loader + up()" ;;
        apply) label="migrations: loader + apply()" ;;
        esac
        awk -v l="$label" -v a="${result[light/$tool]}" -v fa="${result[light/psql-1]}" \
            -v b="${result[ddl/$tool]}" -v fb="${result[ddl/psql-1]}" \
            -v c="${result[noop/$tool]:--}" -v d="${result[status/$tool]:--}" \
            'BEGIN { printf "| %s | %d | %.2f | %d | %.2f | %s | %s |\n", l, a, a / fa, b, b / fb, c, d }'
    done
    printf '| migrations: the same statements from a client, connecting (pgbench -C) | - | | - | | %.1f | - |\n' "$client"
    printf '| migrations: the files'"'"' listing (files_unchanged()) and up() from a client, connecting (pgbench -C) | - | | - | | %.1f | - |\n' "$listing"
}
