#!/usr/bin/env bash
# Regenerates `.sqlx/`, the query metadata that lets `query!`/`query_as!` compile with
# SQLX_OFFLINE=true (CI, Docker, a machine without PostgreSQL). Run it after changing any
# SQL statement or migration, and commit `.sqlx/` with the change.
#
# Every statement is checked against a fresh database with every migration applied: one
# created on the server of WAGW_TEST_DATABASE_URL when set, else a throwaway cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
work_dir sqlx-prepare
if [ -z "${WAGW_TEST_DATABASE_URL:-}" ]; then
  unset DATABASE_URL
  throwaway_postgres
fi
server=$WAGW_TEST_DATABASE_URL
name="sqlx_prepare_$$"
psql "$server" -qAtc "CREATE DATABASE $name"
on_exit "psql '$server' -qAtc 'DROP DATABASE IF EXISTS $name' >/dev/null"
url=$(python3 -c 'import sys,urllib.parse as u; p=u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/"+sys.argv[2])))' "$server" "$name")
for migration in migrations/*.sql; do
  psql "$url" -qAt -v ON_ERROR_STOP=1 -f "$migration" >/dev/null
done
# The readiness check reads sqlx's own bookkeeping table; its shape, as sqlx creates it.
psql "$url" -qAt -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE TABLE _sqlx_migrations (
  version BIGINT PRIMARY KEY, description TEXT NOT NULL,
  installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL,
  checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL);
SQL
rm -rf .sqlx
mkdir -p .sqlx
# The macros write one file per statement while they expand, so the crate must recompile.
cargo clean --quiet -p wa-gateway
DATABASE_URL=$url SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$PWD/.sqlx" cargo check --quiet --all-targets
echo "$(ls .sqlx | wc -l) statements in .sqlx/"
