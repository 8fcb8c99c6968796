#!/usr/bin/env bash
# Installs PostgreSQL's server binaries with apt when the machine has none (initdb, pg_ctl and
# postgres on PATH or under /usr/lib/postgresql/*/bin). Does nothing when they are present.
set -euo pipefail

have_server() {
  command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

if have_server; then
  exit 0
fi

echo "PostgreSQL server binaries not found: installing them with apt-get" >&2
. "$(dirname "$0")/lib.sh"
# The server packages only; the package's own cluster is not needed (we run private ones).
apt_install postgresql
# Debian's package may start its default cluster; wa-gateway never uses it.
as_root service postgresql stop >/dev/null 2>&1 || true
have_server
