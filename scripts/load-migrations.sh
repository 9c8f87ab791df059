#!/usr/bin/env bash
# Registers a local directory of migration files into a database, with nothing but bash and psql:
#
#   scripts/load-migrations.sh [--project NAME] [--up | --apply] [--print] DIR [psql connection options]
#
# DIR holds files in the layout of dbmate, golang-migrate, sqlx, diesel or Flyway (see the
# README); the server places them (migrate.register_files), so this script only ships them, in
# one statement.
# --up then calls SELECT migrate.up(), --apply CALL migrate.apply(). Connection options and
# PG* environment variables go to psql, e.g. -h db.internal -U deployer -d app. --print prints
# the statements instead, for another client (or a review) to send.
set -euo pipefail

usage() {
    echo "usage: $0 [--project NAME] [--up | --apply] [--print] DIR [psql options]" >&2
    exit 2
}

project=default
then=""
print=false
while (($#)); do
    case $1 in
    --project) project=${2:?--project needs a name}; shift 2 ;;
    --up | --apply) then=$1; shift ;;
    --print) print=true; shift ;;
    -h | --help) usage ;;
    *) break ;;
    esac
done
dir=${1:-}
[[ -n $dir && -d $dir ]] || usage
shift

# quote TEXT: sets $quoted to a dollar-quoted literal of TEXT whose tag does not occur in it, so
# no quote, backslash, colon or dollar in a path or body can end it early. psql passes it on
# untouched (it interpolates no variables inside quotes). Pure bash: no process per file.
quote() {
    local tag=migrate n=0
    while [[ $1 == *"\$$tag\$"* ]]; do
        tag=migrate$((++n))
    done
    printf -v quoted '$%s$%s$%s$' "$tag" "$1" "$tag"
}

paths=() contents=()
add() { # add RELATIVE_PATH FILE
    local content=""
    IFS= read -r -d '' content <"$2" || true
    quote "$1"
    paths+=("$quoted")
    quote "$content"
    contents+=("$quoted")
}
for entry in "$dir"/*; do
    name=${entry##*/}
    if [[ -d $entry ]]; then
        for inner in "$entry"/*; do
            [[ -f $inner ]] && add "$name/${inner##*/}" "$inner"
        done
    elif [[ -f $entry && ($name == *.sql || $name == *.sql.conf) ]]; then
        add "$name" "$entry"
    fi
done

join() {
    local IFS=,
    echo "$*"
}
quote "$project"
project_literal=$quoted
statements() {
    echo "SELECT migrate.register_files(ARRAY[$(join "${paths[@]}")]::text[], ARRAY[$(join "${contents[@]}")]::text[], $project_literal) AS registered_or_updated;"
    case $then in
    --up) echo "SELECT migrate.up(NULL, $project_literal) AS applied;" ;;
    --apply) echo "CALL migrate.apply(NULL, $project_literal);" ;;
    esac
}
if $print; then
    statements
else
    statements | psql -X -q -v ON_ERROR_STOP=1 "$@"
fi
