#!/usr/bin/env bash
# The reliability report: what the test suites tried and what they found.
#   scripts/report.sh               runs every test (scripts/test.sh), which ends with the report
#   scripts/report.sh --print FILE  prints the report of a figures file the tests wrote
# The tests add one line "name<TAB>value" per figure to $MIGRATIONS_TEST_FIGURES.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ${1:-} != --print ]]; then
    exec bash scripts/test.sh
fi
figures=${2:?usage: report.sh --print FILE}

awk -F '\t' '
    { sum[$1] += $2 }
    function row(label, value) { printf "| %-62s | %9d |\n", label, value }
    END {
        print "migrations reliability report"
        print ""
        printf "| %-62s | %9s |\n", "figure", "count"
        print "|----------------------------------------------------------------|-----------|"
        row("concurrent callers (16 per round)", sum["concurrent callers"])
        row("migrations applied by concurrent callers", sum["migrations applied by concurrent callers"])
        row("duplicate applications found", sum["duplicate applications found"])
        row("faults injected (cancel, terminate, SIGKILL, client loss, ...)", sum["faults injected"])
        row("half-applied or twice-applied migrations found", sum["half-applied or twice-applied migrations found"])
        row("invariant checks passed", sum["invariant checks passed"])
        row("protections removed in control runs", sum["protections removed"])
        row("of which a test caught the removal", sum["protections removed that a test caught"])
        row("bad inputs tried", sum["bad inputs tried"])
        row("bad inputs with a clean error", sum["bad inputs with a clean error"])
        row("bad inputs with a correct result", sum["bad inputs with a correct result"])
        row("privilege checks passed", sum["privilege checks passed"])
        row("pgspot files checked, no finding", sum["pgspot files checked, no finding"])
        row("snapshot checks passed", sum["snapshot checks passed"])
    }' "$figures"
