#!/usr/bin/env bash
# Sets up what is missing and runs every test: formatting and lints, the in-crate unit and
# #[pg_test] suites, and the tests against a real server (pgrx-tests/) on a throw-away cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/postgres.sh
WORK=${MIGRATIONS_TEST_DIR:-/tmp/migrations-test}

bash scripts/setup.sh "${PG_OTHER_MAJORS[@]}"

echo "== format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --features "pg$PG_MAIN_MAJOR pg_test" -- -D warnings
for major in "${PG_OTHER_MAJORS[@]}"; do
    # What differs between majors is compiled only for them: src/compat.rs.
    CARGO_TARGET_DIR=target/majors cargo clippy --lib --no-default-features --features "pg$major" -- -D warnings
done

echo "== unit and #[pg_test] suites"
rm -rf "$WORK" && install -d -o postgres -g postgres "$WORK" "$WORK/pgrx"
# Every suite's output, for the closing count.
OUTPUT=$WORK/test-output.log
cargo pgrx test "pg$PG_MAIN_MAJOR" --runas postgres --pgdata "$WORK/pgrx" 2>&1 | tee "$OUTPUT"

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
cargo pgrx schema "pg$PG_MAIN_MAJOR" --pg-config "$PG_CONFIG" -o "$WORK/schema.sql" >/dev/null 2>&1
stop_clusters() {
    bash scripts/cluster.sh stop "$WORK/cluster"
    for major in "${PG_OTHER_MAJORS[@]}"; do
        PG_BIN=$(dirname "$(pg_config_for "$major")") bash scripts/cluster.sh stop "$WORK/cluster-$major"
    done
}
trap stop_clusters EXIT
bash scripts/cluster.sh start "$WORK/cluster" 54331 >/dev/null
export MIGRATIONS_TEST_FIGURES=$WORK/figures.tsv
MIGRATIONS_TEST_PGHOST="$WORK/cluster" MIGRATIONS_TEST_PGPORT=54331 MIGRATIONS_TEST_SCHEMA="$WORK/schema.sql" \
    cargo test --package migrations-tests --tests -- --test-threads "${MIGRATIONS_TEST_THREADS:-4}" 2>&1 |
    tee -a "$OUTPUT"

echo "== psql transcripts (pg_regress): every documented call, its NOTICEs and its errors"
bash scripts/regress.sh "$WORK/cluster" 54331 "$WORK/regress" 2>&1 | tee -a "$OUTPUT"

echo "== isolation specs (pg_isolation_regress)"
"$(dirname "$PG_CONFIG")/psql" -X -q -h "$WORK/cluster" -p 54331 -U postgres -c "CREATE DATABASE migrations_isolation"
"$(dirname "$("$PG_CONFIG" --pgxs)")/../test/isolation/pg_isolation_regress" --use-existing \
    --host="$WORK/cluster" --port=54331 --user=postgres --dbname=migrations_isolation \
    --inputdir=isolation --outputdir="$WORK/isolation" \
    $(cd isolation/specs && ls -- *.spec | sed 's/\.spec$//') 2>&1 | tee -a "$OUTPUT"

echo "== control runs: each protection removed must make its test fail"
MIGRATIONS_TEST_PGHOST="$WORK/cluster" MIGRATIONS_TEST_PGPORT=54331 bash scripts/mutants.sh

# "passed<TAB>failed" of a log: cargo's "test result:" lines and pg_regress's summary, summed.
count_results() {
    awk '/^test result:/ { passed += $4; failed += $6 }
         /All [0-9]+ tests passed/ { for (i = 1; i < NF; i++) if ($i == "All") passed += $(i + 1) }
         / of [0-9]+ tests failed/ { failed += $1; passed += $3 - $1 }
         END { printf "%d\t%d\n", passed, failed }' "$1"
}
server_version() { "$1" --version | awk '{print $2}'; }

# Every other major: install, the cycle, concurrency, privilege, non-transactional lane, tenants, diff,
# repeatable and dump/restore tests (update
# paths from earlier releases included), and a dump of the main server restored onto it.
MAJORS=$WORK/majors.tsv
printf '%s (every suite)\t%s\n' "$(server_version "$PG_CONFIG")" "$(count_results "$OUTPUT")" >"$MAJORS"
port=54340
for major in "${PG_OTHER_MAJORS[@]}"; do
    port=$((port + 1))
    major_config=$(pg_config_for "$major")
    major_bin=$(dirname "$major_config")
    major_output=$WORK/output-$major.log
    echo "== PostgreSQL $(server_version "$major_config"): install and server tests"
    CARGO_TARGET_DIR=target/majors cargo pgrx install --pg-config "$major_config" >/dev/null
    cp sql/releases/migrations--*.sql "$("$major_config" --sharedir)/extension/"
    PG_BIN=$major_bin bash scripts/cluster.sh start "$WORK/cluster-$major" "$port" >/dev/null
    MIGRATIONS_TEST_PGHOST="$WORK/cluster-$major" MIGRATIONS_TEST_PGPORT=$port MIGRATIONS_TEST_PGBIN=$major_bin \
        MIGRATIONS_TEST_SOURCE_PGHOST="$WORK/cluster" MIGRATIONS_TEST_SOURCE_PGPORT=54331 MIGRATIONS_TEST_SOURCE_PGBIN="$PG_BIN" \
        cargo test --package migrations-tests --test cycle --test concurrency --test privileges --test nontransactional --test repeatable --test tenants --test declare \
        --test dump_restore --test across_majors -- --skip pgspot --skip n04_ --test-threads "${MIGRATIONS_TEST_THREADS:-4}" 2>&1 |
        tee "$major_output"
    cat "$major_output" >>"$OUTPUT"
    printf '%s\t%s\n' "$(server_version "$major_config")" "$(count_results "$major_output")" >>"$MAJORS"
    PG_BIN=$major_bin bash scripts/cluster.sh stop "$WORK/cluster-$major"
done

echo
bash scripts/report.sh --print "$MIGRATIONS_TEST_FIGURES"
echo
echo "| PostgreSQL           | tests passed | failed |"
echo "|----------------------|--------------|--------|"
awk -F '\t' '{ printf "| %-20s | %12d | %6d |\n", $1, $2, $3 }' "$MAJORS"
echo
# The closing line, over every suite and every major.
count_results "$OUTPUT" | awk -F '\t' '{ printf "%d passed, %d failed\n", $1, $2 }'
