#!/usr/bin/env bash
# Registers a local directory of migration files into a database, with nothing but bash, awk and
# psql:
#
#   scripts/load-migrations.sh [--project NAME] [--up | --apply] [--print] DIR [psql connection options]
#
# DIR holds files in the layout of dbmate, golang-migrate, sqlx, diesel or Flyway (see the
# README); the server places them (migrate.register_files), so this script only ships them, in
# one statement.
# --up then calls SELECT migrate.up(), --apply CALL migrate.apply(). Connection options and
# PG* environment variables go to psql, e.g. -h db.internal -U deployer -d app. --print prints
# the statements instead, for another client (or a review) to send. PSQL names the psql to run
# (Debian's /usr/bin/psql is a Perl wrapper that costs more to start than the no-op start-up).
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

# The names a layout may use: *.sql and *.sql.conf, and every file one level down (diesel's
# directories); hidden files are skipped, as by the server's import_dir.
patterns=('*.sql' '*.sql.conf' '*/*')

# The files of DIR that the patterns match, in that order.
files=()
collect_files() {
    local pattern path
    shopt -s nullglob
    for pattern in "${patterns[@]}"; do
        for path in "$dir"/$pattern; do
            [[ -f $path ]] && files+=("$path")
        done
    done
    shopt -u nullglob
}

# One awk process reads every file and writes the statements: a process or a bash function per
# file costs more than the server's whole no-op start-up. Every path, content and the project
# are dollar-quoted with a tag that does not occur in them, so no quote, backslash, colon or
# dollar can end them early; psql passes them on untouched (it interpolates no variables inside
# quotes). awk reads a file as records, so each is read twice, split on two different bytes:
# only a file that ends in the separator loses it, it cannot end in both, and the longer of the
# two reads is the file. LC_ALL=C: bytes, whatever the locale.
statements() {
    LC_ALL=C MIGRATE_DIR=$dir MIGRATE_PROJECT=$project MIGRATE_THEN=$then awk '
    function slurp(path, separator,    record, content, records, status) {
        RS = separator
        while ((status = (getline record < path)) > 0)
            content = content (records++ ? separator : "") record
        close(path)
        if (status < 0) {
            printf "load-migrations.sh: cannot read %s\n", path > "/dev/stderr"
            exit 2
        }
        return content
    }
    function quoted(text,    tag, n) {
        tag = "migrate"
        while (index(text, "$" tag "$"))
            tag = "migrate" (++n)
        return "$" tag "$" text "$" tag "$"
    }
    BEGIN {
        for (i = 1; i < ARGC; i++) {
            first = slurp(ARGV[i], "\001")
            second = slurp(ARGV[i], "\002")
            paths = paths (i > 1 ? "," : "") quoted(substr(ARGV[i], length(ENVIRON["MIGRATE_DIR"]) + 2))
            contents = contents (i > 1 ? "," : "") quoted(length(first) >= length(second) ? first : second)
        }
        project = quoted(ENVIRON["MIGRATE_PROJECT"])
        printf "SELECT migrate.register_files(ARRAY[%s]::text[], ARRAY[%s]::text[], %s) AS registered_or_updated;\n", paths, contents, project
        if (ENVIRON["MIGRATE_THEN"] == "--up")
            printf "SELECT migrate.up(NULL, %s) AS applied;\n", project
        else if (ENVIRON["MIGRATE_THEN"] == "--apply")
            printf "CALL migrate.apply(NULL, %s);\n", project
    }' "${files[@]}"
}

# What psql reads when the files may be unchanged: their listing (sha256sum skips what is not a
# file, as collect_files does), then, only when files_unchanged() finds them changed, psql runs
# this script again for the statement that ships them. It runs on the left of the pipe into
# psql, so psql starts and connects while the files are read, and it changes directory there:
# the listing names the files relative to DIR.
checked_statements() {
    local then_sql=""
    case $then in
    --up) then_sql="SELECT migrate.up(NULL, :'project') AS applied;" ;;
    --apply) then_sql="CALL migrate.apply(NULL, :'project');" ;;
    esac
    # A database whose extension predates files_unchanged(), or a role not granted it, is sent
    # the files. (printf, not cat: a process costs more than the server's part of the work.)
    printf '%s\n' "SELECT COALESCE(pg_catalog.has_function_privilege(pg_catalog.to_regprocedure(" \
        "    'migrate.files_unchanged(text, text)'), 'EXECUTE'), false) AS ask \\gset" \
        '\if :ask'
    # psql 15 ignores how a command in backquotes exits: a loader that could not read the files
    # prints nothing, and the statement that follows it stops psql instead.
    local register=$'\\set register `bash :\'loader\' --project :\'project\' --print :\'dir\' || echo "DO \\$\\$BEGIN RAISE EXCEPTION USING ERRCODE = \'58030\', MESSAGE = \'load-migrations.sh did not register the files, which it could not read\'; END\\$\\$;"`'
    # The names the patterns match, read once; with none matching, sha256sum reads nothing. A
    # name with a dollar sign could end the dollar quote the listing travels in: such files, and
    # a DIR this shell cannot enter, are shipped without asking.
    local names=()
    shopt -s nullglob
    if cd "$dir" 2>/dev/null && names=(${patterns[@]}) && [[ ${names[*]} != *'$'* ]]; then
        # A name sha256sum could not read (or a directory the patterns match) spoils the
        # listing: the files are shipped, and the reader's error, if any, stops the load.
        printf 'SELECT migrate.files_unchanged($listing$'
        sha256sum -- "${names[@]}" </dev/null 2>/dev/null || echo "not all read"
        printf '%s\n' "\$listing\$, :'project') AS unchanged \\gset"
    else
        printf '%s\n' '\set unchanged false'
    fi
    printf '%s\n' '\else' '\set unchanged false' '\endif' \
        '\if :unchanged' '\else' \
        "$register" \
        ':register' '\endif' "$then_sql"
}

run_psql() {
    "${PSQL:-psql}" -X -q -v ON_ERROR_STOP=1 "$@"
}
if $print; then
    collect_files
    statements
# psql cannot quote a DIR or project holding a newline or a carriage return for the shell that
# would run the loader again, and a machine may lack sha256sum: the files are then shipped
# without asking first.
elif command -v sha256sum >/dev/null && [[ $dir$project != *[$'\n\r']* ]]; then
    checked_statements | run_psql -v project="$project" -v dir="$dir" -v loader="${BASH_SOURCE[0]}" "$@"
else
    collect_files
    statements | run_psql "$@"
fi
