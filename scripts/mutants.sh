#!/usr/bin/env bash
# Control runs: builds the extension with one protection removed at a time, installs it, and
# checks that the test guarding that protection now fails. A test that still passed would
# guard nothing. Reinstalls the real extension at the end.
#   MIGRATIONS_TEST_PGHOST, MIGRATIONS_TEST_PGPORT: the running test server (see scripts/test.sh)
#   MIGRATIONS_TEST_FIGURES (optional): where to add the figures for scripts/report.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source scripts/postgres.sh
COPY=$ROOT/target/mutant-src
export CARGO_TARGET_DIR=$ROOT/target/mutants

figure() {
    if [[ -n ${MIGRATIONS_TEST_FIGURES:-} ]]; then printf '%s\t%s\n' "$1" "$2" >>"$MIGRATIONS_TEST_FIGURES"; fi
}

# mutant NAME FILE FROM TO TEST FILTER: replaces the one occurrence of FROM in FILE by TO.
mutant() {
    local name=$1 file=$2 from=$3 to=$4 test=$5 filter=$6
    rm -rf "$COPY" && mkdir -p "$COPY"
    git ls-files -z | xargs -0 cp --parents -t "$COPY"
    python3 - "$COPY/$file" "$from" "$to" <<'EOF' || return 1
import sys
path, old, new = sys.argv[1:]
text = open(path).read()
if text.count(old) != 1:
    sys.exit(f"mutant does not apply: {old!r} occurs {text.count(old)} times in {path}")
open(path, "w").write(text.replace(old, new))
EOF
    (cd "$COPY" && cargo pgrx install --pg-config "$PG_CONFIG" >/dev/null 2>&1) ||
        { echo "control run '$name': the mutant does not build" >&2; return 1; }
    # The figures are the real suite's: a mutant's findings are expected.
    if (cd "$ROOT" && env -u MIGRATIONS_TEST_FIGURES cargo test --quiet --package migrations-tests \
        --test "$test" -- "$filter" >/dev/null 2>&1); then
        echo "control run '$name': $test $filter still passed: it does not guard this" >&2
        figure "protections removed" 1
        return 1
    fi
    echo "control run '$name': $test $filter failed, as it must"
    figure "protections removed" 1
    figure "protections removed that a test caught" 1
}

status=0
mutant "no runner lock" src/session.rs \
    'pgrx::direct_function_call_as_datum(lock, &[RUNNER_LOCK_KEY.into_datum()]);' \
    'let _ = (lock, RUNNER_LOCK_KEY);' \
    concurrency t01_ || status=1
mutant "the snapshot from before the wait" src/session.rs \
    'pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());' \
    'pg_sys::PushActiveSnapshot(pg_sys::GetActiveSnapshot());' \
    concurrency a_runner_that_waited || status=1
mutant "deferred triggers left for the caller's commit" src/runner.rs \
    'if deferred == DeferredChecks::AtBodyEnd || registrant != caller {' \
    'if deferred == DeferredChecks::AtBodyEnd && registrant != caller {' \
    privileges a_registrant_gains_nothing || status=1
mutant "bookkeeping with the caller's search_path" src/session.rs \
    'Some((c"search_path", c"pg_catalog, pg_temp"))' \
    'None' \
    privileges hostile_search_paths || status=1
mutant "holdable cursors allowed" src/leftovers.rs \
    'NodeTag::T_DeclareCursorStmt
                if' \
    'NodeTag::T_DeclareCursorStmt
                if false &&' \
    privileges t25_ || status=1
mutant "no utility hook: dynamic SQL reaches PREPARE, LISTEN, LOAD" src/leftovers.rs \
    'if session::body_running() {' \
    'if false {' \
    privileges t25_a_body_leaves_nothing || status=1
mutant "nothing looked for at the end of a body" src/runner.rs \
    'before.check(place)?;' \
    'let _ = before;' \
    privileges t25_a_body_leaves_nothing || status=1
mutant "session-level advisory locks of a body kept" src/leftovers.rs \
    '(before..holds).for_each(|_| lock.release_session_hold());' \
    'let _ = before;' \
    privileges t25_a_body_leaves_nothing || status=1
mutant "session-level advisory locks of a failed body kept" src/leftovers.rs \
    'self.release_session_locks_added(&SessionState::capture()?);' \
    'let _ = SessionState::capture()?;' \
    privileges t25_a_body_leaves_nothing || status=1

rm -rf "$COPY"
unset CARGO_TARGET_DIR
cargo pgrx install --pg-config "$PG_CONFIG" >/dev/null 2>&1 || { echo "cannot reinstall the extension" >&2; exit 1; }
exit $status
