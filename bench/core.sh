#!/usr/bin/env bash
# Benchmarks the performance floor on a throw-away server with a release build:
#   1. N trivial migrations (one INSERT each) applied by one SELECT migrate.up(), against psql
#      running the same N statements in one transaction (the floor);
#      the same through CALL migrate.apply(), which commits after each migration;
#   2. the application start-up case: registering all N again (unchanged) plus up(), as N
#      register() calls and as one register_files() call;
#   3. a no-op up() right after a new project's N migrations were applied, while the tables'
#      statistics still describe the database before them (autovacuum has not analyzed yet);
#   4. SELECT * FROM migrate.status() over N migrations, right after the applies and once the
#      tables are analyzed;
#   5. N_DDL DDL-heavy migrations (a table with a foreign key to the one before, and an index)
#      applied by one SELECT migrate.up(), against psql running them in one transaction, with
#      and without the snapshot of the catalog stored after them.
# Prints medians over RUNS runs and ratios to the floor. Not a test: it asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000}
N_DDL=${N_DDL:-300}
RUNS=${RUNS:-7}
DIR=${MIGRATIONS_BENCH_DIR:-/tmp/migrations-bench}
PORT=${MIGRATIONS_BENCH_PORT:-54334}
source scripts/postgres.sh
# PostgreSQL's own psql and tools: Debian's /usr/bin/psql is a Perl wrapper costing ~45 ms a start.
export PATH=$PG_BIN:$PATH
BIN=$PG_BIN

bash scripts/setup.sh
echo "building the release extension..." >&2
cargo pgrx install --release --pg-config "$BIN/pg_config" >/dev/null
bash scripts/cluster.sh stop "$DIR"
trap 'bash scripts/cluster.sh stop "$DIR"; rm -rf "$WORK"' EXIT
eval "$(bash scripts/cluster.sh start "$DIR" "$PORT")"
WORK=$(mktemp -d)

# The same N statements, as one psql file, as N register() calls, and as one register_files().
for i in $(seq 1 "$N"); do echo "INSERT INTO bench_log VALUES ($i);"; done >"$WORK/bodies.sql"
for i in $(seq 1 "$N"); do
    printf "SELECT migrate.register('%06d', 'insert %d', 'INSERT INTO bench_log VALUES (%d);');\n" "$i" "$i" "$i"
done >"$WORK/register.sql"
files_call() { # files_call PROJECT: one register_files() call of the N migrations
    echo "SELECT migrate.register_files(array_agg(format('%s_insert.up.sql', lpad(i::text, 6, '0'))),"
    echo "    array_agg(format('INSERT INTO bench_log VALUES (%s);', i)), '$1') FROM generate_series(1, $N) i;"
}
files_call files >"$WORK/files.sql"
ddl_body() {
    local fk=""
    (($1 > 1)) && fk=", parent bigint REFERENCES t_$(($1 - 1)) (id)"
    echo "CREATE TABLE t_$1 (id bigint PRIMARY KEY, v text$fk); CREATE INDEX t_$1_v ON t_$1 (v);"
}
for i in $(seq 1 "$N_DDL"); do ddl_body "$i"; done >"$WORK/ddl.sql"
for i in $(seq 1 "$N_DDL"); do
    printf "SELECT migrate.register('%06d', 'table %d', \$b\$%s\$b\$);\n" "$i" "$i" "$(ddl_body "$i")"
done >"$WORK/register-ddl.sql"

psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
fresh_db() { # fresh_db NAME [WITH_EXTENSION]
    dropdb --if-exists "$1" 2>/dev/null
    createdb "$1"
    psql_q -d "$1" -c "CREATE TABLE bench_log (i int)"
    if [[ ${2:-} ]]; then psql_q -d "$1" -c "CREATE EXTENSION migrations"; fi
}
now_ns() { date +%s%N; }
median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

floor=() up=() apply=() startup=() files=() stale=() ddl_floor=() ddl_up=() ddl_bare=()
for _ in $(seq 1 "$RUNS"); do
    fresh_db floor
    start=$(now_ns); psql_q -d floor -1 -f "$WORK/bodies.sql"; end=$(now_ns)
    floor+=($(((end - start) / 1000)))

    fresh_db ext yes
    psql_q -d ext -f "$WORK/register.sql" >/dev/null
    start=$(now_ns); psql_q -d ext -c "SELECT migrate.up()" >/dev/null 2>&1; end=$(now_ns)
    up+=($(((end - start) / 1000)))
    [[ $(psql -X -A -t -d ext -c "SELECT count(*) FROM bench_log") == "$N" ]]

    fresh_db committing yes
    psql_q -d committing -f "$WORK/register.sql" >/dev/null
    start=$(now_ns); psql_q -d committing -c "CALL migrate.apply()" >/dev/null 2>&1; end=$(now_ns)
    apply+=($(((end - start) / 1000)))
    [[ $(psql -X -A -t -d committing -c "SELECT count(*) FROM bench_log") == "$N" ]]

    start=$(now_ns); psql_q -d ext -1 -f "$WORK/register.sql" -c "SELECT migrate.up()" >/dev/null 2>&1; end=$(now_ns)
    startup+=($(((end - start) / 1000)))

    psql_q -d ext -f "$WORK/files.sql" -c "SELECT migrate.up(project => 'files')" >/dev/null 2>&1
    start=$(now_ns)
    psql_q -d ext -1 -f "$WORK/files.sql" -c "SELECT migrate.up(project => 'files')" >/dev/null 2>&1
    end=$(now_ns)
    files+=($(((end - start) / 1000)))

    # Statistics that know one small project, then a new one applied in bulk.
    fresh_db stale yes
    psql_q -d stale -c "SELECT migrate.register('1', 'small', 'SELECT 1', project => 'small')" \
        -c "SELECT migrate.up(project => 'small')" -c "ANALYZE migrate.migrations, migrate.applied" >/dev/null 2>&1
    files_call big | psql_q -d stale >/dev/null 2>&1
    psql_q -d stale -c "SELECT migrate.up(project => 'big')" >/dev/null 2>&1
    start=$(now_ns); psql_q -d stale -c "SELECT migrate.up(project => 'big')" >/dev/null 2>&1; end=$(now_ns)
    stale+=($(((end - start) / 1000)))
    [[ $(psql -X -A -t -d stale -c "SELECT count(*) FROM bench_log") == "$N" ]]

    fresh_db ddl_floor
    start=$(now_ns); psql_q -d ddl_floor -1 -f "$WORK/ddl.sql"; end=$(now_ns)
    ddl_floor+=($(((end - start) / 1000)))
    fresh_db ddl yes
    psql_q -d ddl -f "$WORK/register-ddl.sql" >/dev/null
    start=$(now_ns); psql_q -d ddl -c "SELECT migrate.up()" >/dev/null 2>&1; end=$(now_ns)
    ddl_up+=($(((end - start) / 1000)))
    # The same without the snapshot of the catalog stored after them (migrate.snapshots).
    fresh_db ddl yes
    psql_q -d ddl -f "$WORK/register-ddl.sql" >/dev/null
    start=$(now_ns); PGOPTIONS="-c migrate.snapshots=off" psql_q -d ddl -c "SELECT migrate.up()" >/dev/null 2>&1; end=$(now_ns)
    ddl_bare+=($(((end - start) / 1000)))
    [[ $(psql -X -A -t -d ddl -c "SELECT count(*) FROM migrate.snapshots") == 0 ]]
    [[ $(psql -X -A -t -d ddl -c "SELECT count(*) FROM pg_class WHERE relname LIKE 't\_%'") == \
        $(psql -X -A -t -d ddl_floor -c "SELECT count(*) FROM pg_class WHERE relname LIKE 't\_%'") ]]
done

echo "SELECT * FROM migrate.status('default');" >"$WORK/status.sql"
status_ms=$("$BIN/pgbench" -n -t 200 -f "$WORK/status.sql" ext 2>/dev/null | awk '/latency average/ {print $4}')
[[ $(psql -X -A -t -d ext -c "SELECT count(*) FROM migrate.status('default')") == "$N" ]]
# Again once the tables are analyzed, as autovacuum leaves them a minute after a bulk apply.
psql_q -d ext -c "VACUUM ANALYZE"
analyzed_ms=$("$BIN/pgbench" -n -t 200 -f "$WORK/status.sql" ext 2>/dev/null | awk '/latency average/ {print $4}')

floor_us=$(printf '%s\n' "${floor[@]}" | median)
up_us=$(printf '%s\n' "${up[@]}" | median)
apply_us=$(printf '%s\n' "${apply[@]}" | median)
startup_us=$(printf '%s\n' "${startup[@]}" | median)
files_us=$(printf '%s\n' "${files[@]}" | median)
stale_us=$(printf '%s\n' "${stale[@]}" | median)
ddl_floor_us=$(printf '%s\n' "${ddl_floor[@]}" | median)
ddl_up_us=$(printf '%s\n' "${ddl_up[@]}" | median)
ddl_bare_us=$(printf '%s\n' "${ddl_bare[@]}" | median)
awk -v n="$N" -v runs="$RUNS" -v f="$floor_us" -v u="$up_us" -v a="$apply_us" -v s="$startup_us" -v fi="$files_us" -v sl="$stale_us" -v st="$status_ms" -v sa="$analyzed_ms" \
    -v nd="$N_DDL" -v df="$ddl_floor_us" -v du="$ddl_up_us" -v db="$ddl_bare_us" 'BEGIN {
    printf "migrations benchmark: %d trivial migrations, median of %d runs, one psql call each\n\n", n, runs
    printf "| %-58s | %10s | %8s |\n", "workload", "median ms", "vs floor"
    printf "|%s|%s|%s|\n", "------------------------------------------------------------", "------------", "----------"
    printf "| %-58s | %10.1f | %8s |\n", "psql -1 -f: the " n " bodies in one transaction (floor)", f / 1000, "1.00"
    printf "| %-58s | %10.1f | %8.2f |\n", "SELECT migrate.up() applying " n " registered migrations", u / 1000, u / f
    printf "| %-58s | %10.1f | %8.2f |\n", "CALL migrate.apply() applying " n ", a commit each", a / 1000, a / f
    printf "| %-58s | %10.1f | %8.2f |\n", "start-up no-op: " n " register() calls (unchanged) + up()", s / 1000, s / f
    printf "| %-58s | %10.1f | %8.2f |\n", "start-up no-op: register_files() of " n " (unchanged) + up()", fi / 1000, fi / f
    printf "| %-58s | %10.1f | %8.2f |\n", "no-op up() after " n " applied, statistics not yet updated", sl / 1000, sl / f
    printf "| %-58s | %10.2f | %8s |\n", "SELECT * FROM migrate.status() over " n " (pgbench avg)", st, "-"
    printf "| %-58s | %10.2f | %8s |\n", "the same once the tables are analyzed", sa, "-"
    printf "| %-58s | %10.1f | %8s |\n", "psql -1 -f: " nd " DDL-heavy bodies in one transaction", df / 1000, "1.00"
    printf "| %-58s | %10.1f | %8.2f |\n", "SELECT migrate.up() applying the " nd " DDL-heavy ones", du / 1000, du / df
    printf "| %-58s | %10.1f | %8.2f |\n", "the same with migrate.snapshots = off", db / 1000, db / df
}'
