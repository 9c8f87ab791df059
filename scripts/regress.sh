#!/usr/bin/env bash
# The psql transcripts of test/sql, compared with test/expected by pg_regress on a running
# server with the extension installed, and the docs' transcripts checked against them.
#   scripts/regress.sh HOST PORT OUTDIR
#   REGRESS_ACCEPT=1 copies the results over the expected files (after reading the diff).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/postgres.sh
host=${1:?usage: regress.sh HOST PORT OUTDIR} port=${2:?} out=${3:?}

"$PG_BIN/psql" -X -q -h "$host" -p "$port" -U postgres \
    -c "DROP DATABASE IF EXISTS migrations_regress" -c "CREATE DATABASE migrations_regress"
rm -rf "$out"
status=0
"$(dirname "$("$PG_CONFIG" --pgxs)")/../test/regress/pg_regress" --use-existing \
    --host="$host" --port="$port" --user=postgres --dbname=migrations_regress \
    --inputdir=test --outputdir="$out" --launcher="$PWD/test/launcher" \
    $(cd test/sql && ls -- *.sql | sed 's/\.sql$//') || status=1
if [[ ${REGRESS_ACCEPT:-} == 1 ]]; then
    cp "$out"/results/*.out test/expected/
fi
shopt -s nullglob
python3 scripts/check-transcripts.py README.md docs/*.md || status=1
exit $status
