#!/usr/bin/env bash
# Installs what building and testing need, idempotently: Debian packages, cargo-pgrx 0.18.0,
# and the pgrx configuration for the system PostgreSQL 15. Quick when everything is there.
set -euo pipefail

PG_MAJOR=15
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
PGRX_VERSION=0.18.0

missing=()
for pkg in postgresql-$PG_MAJOR postgresql-client-$PG_MAJOR postgresql-server-dev-$PG_MAJOR libclang-dev clang sudo; do
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

if ! grep -qs "pg$PG_MAJOR" "${PGRX_HOME:-$HOME/.pgrx}/config.toml"; then
    echo "setup: cargo pgrx init --pg$PG_MAJOR $PG_CONFIG"
    cargo pgrx init --pg$PG_MAJOR "$PG_CONFIG" >/dev/null
fi
