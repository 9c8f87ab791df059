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

# mutant NAME TO TEST FILTER: replaces the line after the one comment `// control run "NAME"` in
# src/ by TO, indented as it was. The comment marks, at the protection itself, that a control run
# removes it.
mutant() {
    local name=$1 to=$2 test=$3 filter=$4
    rm -rf "$COPY" && mkdir -p "$COPY"
    git ls-files -z | xargs -0 cp --parents -t "$COPY"
    python3 - "$COPY/src" "$name" "$to" <<'EOF' || return 1
import pathlib, sys
root, name, new = sys.argv[1:]
marker = f'// control run "{name}"'
sites = [(path, number) for path in sorted(pathlib.Path(root).rglob("*.rs"))
         for number, line in enumerate(path.read_text().split("\n")) if line.strip() == marker]
if len(sites) != 1:
    sys.exit(f"control run {name!r}: {len(sites)} marked sites in src/, not 1")
path, number = sites[0]
lines = path.read_text().split("\n")
target = lines[number + 1]
lines[number + 1] = target[: len(target) - len(target.lstrip())] + new
path.write_text("\n".join(lines))
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
mutant "the desired schema kept" \
    'let after = transaction::subtransaction(|| {' \
    declare d01_ || status=1
mutant "the file set kept after a registry change" \
    '"WITH "' \
    files the_loader_ships_the_files_only_when_they_changed || status=1
mutant "the snapshot stored again after a catalog write" \
    'true' \
    snapshot s07_ || status=1
mutant "no runner lock" \
    'let _ = (lock, RUNNER_LOCK_KEY);' \
    concurrency t01_ || status=1
mutant "the snapshot from before the wait" \
    'pg_sys::PushActiveSnapshot(pg_sys::GetActiveSnapshot());' \
    concurrency a_runner_that_waited || status=1
mutant "deferred triggers left for the caller's commit" \
    'if deferred == DeferredChecks::AtBodyEnd && registrant != self.call.caller {' \
    privileges a_registrant_gains_nothing || status=1
mutant "bookkeeping with the caller's search_path" \
    'with_identity(role, &[], f)' \
    privileges hostile_search_paths || status=1
mutant "holdable cursors allowed" \
    'let holdable = false;' \
    privileges t25_ || status=1
mutant "no utility hook" \
    'if false {' \
    privileges t25_a_body_leaves_nothing || status=1
mutant "nothing looked for at the end of a body" \
    'let _ = before;' \
    privileges t25_a_body_leaves_nothing || status=1
mutant "the registrant left current after a failed top-level statement" \
    'let _ = (caller, context);' \
    nontransactional n07_ || status=1
mutant "an INVALID index left for the next run" \
    'let _ = &found.invalid;' \
    nontransactional n03_ || status=1
mutant "the tenant query run as the caller" \
    'let named: Vec<Option<String>> = read()?;' \
    tenants f07_ || status=1
mutant "bodies outside their tenant's schema" \
    'let _ = search_path;' \
    tenants f01_ || status=1
mutant "session-level advisory locks of a body kept" \
    'let _ = before;' \
    privileges t25_a_body_leaves_nothing || status=1
mutant "session-level advisory locks of a failed body kept" \
    'let _ = SessionState::capture()?;' \
    privileges t25_a_body_leaves_nothing || status=1
mutant "the attempt before the savepoints not counted" \
    'executor.run(migration, direction, deferred, 0)' \
    production a_lock_timeout_after_other_migrations || status=1

rm -rf "$COPY"
unset CARGO_TARGET_DIR
cargo pgrx install --pg-config "$PG_CONFIG" >/dev/null 2>&1 || { echo "cannot reinstall the extension" >&2; exit 1; }
exit $status
