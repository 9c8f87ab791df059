#!/usr/bin/env bash
# One stream of M migrations (default 20) fanned out over T tenant schemas (default 1,000), on a
# throw-away server with a release build:
#   1. CALL migrate.apply() of a project whose tenant set is a query over the T schemas: each
#      migration committed in each tenant, with its bookkeeping and its search_path;
#   2. the loop users write by hand: psql running, for each tenant, BEGIN; SET LOCAL
#      search_path; the M bodies; COMMIT (no history, no lock, no resume);
#   3. a no-op apply() once every tenant is up to date: what each start-up pays;
#   4. SELECT * FROM migrate.status() over the T x M rows (pgbench, 20 calls).
# Prints medians over RUNS runs, the time per tenant, and ratios to the loop. Not a test: it
# asserts nothing it does not check first.
set -euo pipefail
cd "$(dirname "$0")/.."

T=${T:-1000}
M=${M:-20}
RUNS=${RUNS:-3}
DIR=${MIGRATIONS_BENCH_DIR:-/tmp/migrations-bench-tenants}
PORT=${MIGRATIONS_BENCH_PORT:-54336}
source scripts/postgres.sh
# PostgreSQL's own psql and tools: Debian's /usr/bin/psql is a Perl wrapper costing ~45 ms a start.
export PATH=$PG_BIN:$PATH

bash scripts/setup.sh
echo "building the release extension..." >&2
cargo pgrx install --release --pg-config "$PG_CONFIG" >/dev/null
bash scripts/cluster.sh stop "$DIR"
WORK=$(mktemp -d)
trap 'bash scripts/cluster.sh stop "$DIR"; rm -rf "$WORK"' EXIT
eval "$(bash scripts/cluster.sh start "$DIR" "$PORT")"

# M bodies of the kinds a schema-per-tenant application ships: tables, columns, indexes,
# constraints, a view, a function, seed rows.
body() {
    local i=$1
    case $((i % 5)) in
        1) echo "CREATE TABLE t$i (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());" ;;
        2) echo "ALTER TABLE t$((i - 1)) ADD COLUMN note text; CREATE INDEX t$((i - 1))_name_idx ON t$((i - 1)) (name);" ;;
        3) echo "INSERT INTO t$((i - 2)) (name) SELECT 'seed ' || g FROM generate_series(1, 10) g;" ;;
        4) echo "CREATE VIEW v$i AS SELECT id, name FROM t$((i - 3)) WHERE note IS NULL;" ;;
        0) echo "CREATE FUNCTION f$i(bigint) RETURNS text LANGUAGE sql STABLE AS \$\$SELECT name FROM t$((i - 4)) WHERE id = \$1\$\$;" ;;
    esac
}
for i in $(seq 1 "$M"); do body "$i"; done >"$WORK/bodies.sql"
{
    echo "SELECT migrate.set_tenants(query => \$q\$SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant\\_%' ORDER BY nspname\$q\$, project => 'app');"
    for i in $(seq 1 "$M"); do
        printf "SELECT migrate.register('%03d', 'step %d', \$b\$%s\$b\$, project => 'app');\n" "$i" "$i" "$(body "$i")"
    done
} >"$WORK/register.sql"
for t in $(seq -f '%04g' 1 "$T"); do
    echo "BEGIN; SET LOCAL search_path = tenant_$t;"
    cat "$WORK/bodies.sql"
    echo "COMMIT;"
done >"$WORK/loop.sql"

echo "SELECT * FROM migrate.status('app');" >"$WORK/status.sql"

psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
fresh_db() { # fresh_db NAME: T empty tenant schemas and the extension
    dropdb --if-exists "$1" 2>/dev/null
    createdb "$1"
    psql_q -d "$1" -c "CREATE EXTENSION migrations"
    for t in $(seq -f '%04g' 1 "$T"); do echo "CREATE SCHEMA tenant_$t;"; done | psql_q -d "$1" >/dev/null
}
now_us() { echo $(($(date +%s%N) / 1000)); }
median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
# The same catalog either way: every tenant has every object.
objects() { psql -X -A -t -d "$1" -c "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname LIKE 'tenant\_%'"; }

apply=() loop=() noop=() status=()
for _ in $(seq 1 "$RUNS"); do
    fresh_db fanned
    psql_q -d fanned -f "$WORK/register.sql" >/dev/null
    start=$(now_us); psql_q -d fanned -c "SET client_min_messages = warning" -c "CALL migrate.apply(project => 'app')"; end=$(now_us)
    apply+=($((end - start)))
    [[ $(psql -X -A -t -d fanned -c "SELECT count(*) FROM migrate.status('app') WHERE state = 'applied'") == $((T * M)) ]]

    fresh_db loop
    start=$(now_us); psql_q -d loop -f "$WORK/loop.sql" >/dev/null; end=$(now_us)
    loop+=($((end - start)))
    [[ $(objects loop) == "$(objects fanned)" ]]

    start=$(now_us); psql_q -d fanned -c "CALL migrate.apply(project => 'app')"; end=$(now_us)
    noop+=($((end - start)))

    # pgbench times the call and its rows sent; psql would add its aligned formatting of them.
    status+=($("$PG_BIN/pgbench" -n -t 20 -f "$WORK/status.sql" fanned 2>/dev/null | awk '/latency average/ {print $4 * 1000}'))
done

m_apply=$(printf '%s\n' "${apply[@]}" | median)
m_loop=$(printf '%s\n' "${loop[@]}" | median)
m_noop=$(printf '%s\n' "${noop[@]}" | median)
m_status=$(printf '%s\n' "${status[@]}" | median)
echo
echo "$M migrations fanned out over $T tenant schemas; medians of $RUNS runs, release build, $(nproc) cores"
echo
echo "| run | total | per tenant | ratio to the loop |"
echo "|---|---:|---:|---:|"
awk -v a="$m_apply" -v l="$m_loop" -v n="$m_noop" -v s="$m_status" -v t="$T" 'BEGIN {
    printf "| `CALL migrate.apply()` | %.0f ms | %.2f ms | %.2f |\n", a / 1000, a / 1000 / t, a / l
    printf "| psql loop, one transaction per tenant | %.0f ms | %.2f ms | 1.00 |\n", l / 1000, l / 1000 / t
    printf "| no-op `CALL migrate.apply()` | %.0f ms | %.3f ms | |\n", n / 1000, n / 1000 / t
    printf "| `migrate.status()`, %d rows (pgbench avg) | %.1f ms | | |\n", t * '"$M"', s / 1000
}'
