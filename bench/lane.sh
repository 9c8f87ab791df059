#!/usr/bin/env bash
# The writer's view of an index build on a table of ROWS rows (default 1,000,000): one session
# keeps updating single rows in autocommit while the index is built
#   1. by CALL migrate.apply() of a non-transactional migration (CREATE INDEX CONCURRENTLY),
#   2. by psql running the same CREATE INDEX CONCURRENTLY itself (what a client-side tool gets),
#   3. by SELECT migrate.up() of a transactional migration (plain CREATE INDEX),
# and prints, for each, the build's duration, the writer's longest stall (the longest time
# between two of its commits, or between the build's start or end and its nearest commit) and
# its commits during the build, with ratios to the psql run. Not a test: it asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${ROWS:-1000000}
RUNS=${RUNS:-3}
DIR=${MIGRATIONS_BENCH_DIR:-/tmp/migrations-bench-lane}
PORT=${MIGRATIONS_BENCH_PORT:-54335}
source scripts/postgres.sh
# PostgreSQL's own psql and tools: Debian's /usr/bin/psql is a Perl wrapper costing ~45 ms a start.
export PATH=$PG_BIN:$PATH

bash scripts/setup.sh
export PYTHONPATH=$PWD/target/python-apps${PYTHONPATH:+:$PYTHONPATH}
python3 -c 'import psycopg' 2>/dev/null ||
    python3 -m pip install -q --root-user-action=ignore --target target/python-apps 'psycopg[binary]'
echo "building the release extension..." >&2
cargo pgrx install --release --pg-config "$PG_CONFIG" >/dev/null
bash scripts/cluster.sh stop "$DIR"
trap 'bash scripts/cluster.sh stop "$DIR"' EXIT
eval "$(bash scripts/cluster.sh start "$DIR" "$PORT")"
ROWS=$ROWS RUNS=$RUNS python3 bench/lane.py
