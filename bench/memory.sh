#!/usr/bin/env bash
# How much memory a backend needs to register and apply one large body: for bodies of SIZES
# megabytes (100-byte INSERT statements), the backend's peak resident set (VmHWM) after
# connecting, after register() and after up(), and the growth as a multiple of the body size.
# Uses the extension as installed (scripts/test.sh or bench/core.sh install it). Not a test.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=${SIZES:-"1 10 50"}
DIR=${MIGRATIONS_BENCH_DIR:-/tmp/migrations-bench-memory}
PORT=${MIGRATIONS_BENCH_PORT:-54335}

bash scripts/cluster.sh stop "$DIR"
trap 'bash scripts/cluster.sh stop "$DIR"' EXIT
eval "$(bash scripts/cluster.sh start "$DIR" "$PORT")"

echo "migrations memory: one body of N 100-byte statements, backend peak RSS (VmHWM, MB)"
echo
echo "| body MB | statements | connected | after register | after up | growth / body size |"
echo "|---:|---:|---:|---:|---:|---:|"
for mb in $SIZES; do
    statements=$((mb * 10000))
    body=$DIR/body-$mb.sql
    {
        echo "CREATE TABLE big (id int, note text);"
        for ((i = 1; i <= statements; i++)); do
            printf "INSERT INTO big VALUES (%d, '%-60s');\n" "$i" "row $i"
        done
    } >"$body"
    chown postgres "$body"
    dropdb --if-exists "memory_$mb" && createdb "memory_$mb"
    psql -X -q -d "memory_$mb" -c "CREATE EXTENSION migrations"
    # One session: its backend's VmHWM is read from /proc between the steps.
    psql -X -q -A -t -d "memory_$mb" -v ON_ERROR_STOP=1 >"$DIR/out-$mb" <<EOF
SET client_min_messages = warning;
SELECT pg_backend_pid() AS pid \gset
\setenv BACKEND :pid
\! awk '/VmHWM/ {print \$2}' /proc/\$BACKEND/status
SELECT migrate.register('1', 'big', pg_read_file('$body')) IS NOT NULL;
\! awk '/VmHWM/ {print \$2}' /proc/\$BACKEND/status
SELECT migrate.up();
\! awk '/VmHWM/ {print \$2}' /proc/\$BACKEND/status
EOF
    mapfile -t kb < <(grep -E '^[0-9]+$' "$DIR/out-$mb" | awk 'NR != 3')
    awk -v mb="$mb" -v n="$statements" -v a="${kb[0]}" -v b="${kb[1]}" -v c="${kb[2]}" 'BEGIN {
        bytes = mb * 1000000
        printf "| %d | %d | %.1f | %.1f | %.1f | %.1f |\n", mb, n, a / 1024, b / 1024, c / 1024, (c - a) * 1024 / bytes
    }'
done
