#!/usr/bin/env bash
# Sets up what is missing and runs every test: formatting and lints, the in-crate unit and
# #[pg_test] suites, and the tests against a real server (pgrx-tests/) on a throw-away cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
WORK=${MIGRATIONS_TEST_DIR:-/tmp/migrations-test}

bash scripts/setup.sh

echo "== format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --features "pg15 pg_test" -- -D warnings

echo "== unit and #[pg_test] suites"
rm -rf "$WORK" && install -d -o postgres -g postgres "$WORK" "$WORK/pgrx"
# Every suite's output, for the closing count.
OUTPUT=$WORK/test-output.log
cargo pgrx test pg15 --runas postgres --pgdata "$WORK/pgrx" 2>&1 | tee "$OUTPUT"

echo "== example applications (Python psycopg, Node.js pg, Rust tokio-postgres) and pgspot"
# Into a directory of the project's own: Debian's python3 refuses system-wide pip installs.
export PYTHONPATH=$PWD/target/python-apps${PYTHONPATH:+:$PYTHONPATH}
python3 -c 'import psycopg, pgspot' 2>/dev/null ||
    python3 -m pip install -q --root-user-action=ignore --target target/python-apps 'psycopg[binary]' pgspot
[[ -d examples/apps/node/node_modules/pg ]] || (cd examples/apps/node && npm ci --silent --no-audit --no-fund)
cargo build --quiet --package migrations-example-app

echo "== tests against a real server"
cargo pgrx install --pg-config "$PG_CONFIG" >/dev/null
# The install script of the previous release, for the update and cross-release restore tests
# (cargo-pgrx installs only the current version's script and the update scripts).
cp sql/releases/migrations--*.sql "$("$PG_CONFIG" --sharedir)/extension/"
trap 'bash scripts/cluster.sh stop "$WORK/cluster"' EXIT
cargo pgrx schema pg15 --pg-config "$PG_CONFIG" -o "$WORK/schema.sql" >/dev/null 2>&1
bash scripts/cluster.sh start "$WORK/cluster" 54331 >/dev/null
export MIGRATIONS_TEST_FIGURES=$WORK/figures.tsv
MIGRATIONS_TEST_PGHOST="$WORK/cluster" MIGRATIONS_TEST_PGPORT=54331 MIGRATIONS_TEST_SCHEMA="$WORK/schema.sql" \
    cargo test --package migrations-tests --tests -- --test-threads "${MIGRATIONS_TEST_THREADS:-4}" 2>&1 |
    tee -a "$OUTPUT"

echo "== isolation specs (pg_isolation_regress)"
"$(dirname "$PG_CONFIG")/psql" -X -q -h "$WORK/cluster" -p 54331 -U postgres -c "CREATE DATABASE migrations_isolation"
/usr/lib/postgresql/15/lib/pgxs/src/test/isolation/pg_isolation_regress --use-existing \
    --host="$WORK/cluster" --port=54331 --user=postgres --dbname=migrations_isolation \
    --inputdir=isolation --outputdir="$WORK/isolation" \
    $(cd isolation/specs && ls -- *.spec | sed 's/\.spec$//') 2>&1 | tee -a "$OUTPUT"

echo "== control runs: each protection removed must make its test fail"
MIGRATIONS_TEST_PGHOST="$WORK/cluster" MIGRATIONS_TEST_PGPORT=54331 bash scripts/mutants.sh

echo
bash scripts/report.sh --print "$MIGRATIONS_TEST_FIGURES"
echo
# The closing line: cargo's "test result:" lines and pg_regress's summary, summed.
awk '/^test result:/ { passed += $4; failed += $6 }
     /All [0-9]+ tests passed/ { for (i = 1; i < NF; i++) if ($i == "All") passed += $(i + 1) }
     / of [0-9]+ tests failed/ { failed += $1; passed += $3 - $1 }
     END { printf "%d passed, %d failed\n", passed, failed }' "$OUTPUT"
