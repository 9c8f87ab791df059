#!/usr/bin/env bash
# The main job on the example migrations: sets up what is missing, builds and installs the
# extension, starts a throw-away PostgreSQL, registers examples/migrations/*.sql with nothing but
# psql, then runs up, status, down and down_to, printing every statement and its real output.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/postgres.sh

DIR=${MIGRATIONS_DEMO_DIR:-/tmp/migrations-demo}
PORT=${MIGRATIONS_DEMO_PORT:-54333}

bash scripts/setup.sh
echo "== building and installing the extension"
cargo pgrx install --pg-config "$PG_CONFIG" >/dev/null
bash scripts/cluster.sh stop "$DIR"
trap 'bash scripts/cluster.sh stop "$DIR"' EXIT
eval "$(bash scripts/cluster.sh start "$DIR" "$PORT")"
echo "== throw-away PostgreSQL on $PGHOST port $PGPORT"
createdb demo

sql() {
    psql -X -q -v ON_ERROR_STOP=1 -d demo --echo-queries "$@"
}

sql -c "CREATE EXTENSION migrations"

echo "== registering examples/migrations/*.sql (version_name.sql, dbmate layout)"
for file in examples/migrations/*.sql; do
    base=$(basename "$file" .sql)
    psql -X -q -A -t -v ON_ERROR_STOP=1 -d demo \
        -v version="${base%%_*}" -v name="${base#*_}" -v script="$(cat "$file")" <<'SQL'
SELECT format('%-16s %-28s %s', :'version', :'name', migrate.register_script(:'version', :'name', :'script'));
SQL
done

sql <<'SQL'
SELECT version, name, state FROM migrate.status();
SELECT migrate.up();
SELECT version, name, state, applied_by, round(duration_ms::numeric, 2) AS ms FROM migrate.status();
SELECT * FROM customer_totals ORDER BY id;
SELECT migrate.up();
SELECT migrate.down();
SELECT migrate.down_to('20260105091500');
SELECT version, name, state FROM migrate.status();
SELECT id, version, event, role FROM migrate.history();
SQL

echo "== what is refused, and a failing body"
sql -v ON_ERROR_STOP=0 <<'SQL'
SELECT migrate.register('20260110090000', 'index concurrently', E'-- fast index\nCREATE INDEX CONCURRENTLY orders_total_idx ON orders (total);');
SELECT migrate.register('20260110090000', 'bad backfill', E'ALTER TABLE orders ADD COLUMN note text;\nUPDATE orders SET total = total / 0;');
SELECT migrate.up();
SELECT version, state FROM migrate.status();
SQL
