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
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || {
    echo "not root and no sudo: install PostgreSQL yourself (apt-get install postgresql) or set DATABASE_URL" >&2
    exit 2
  }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# The server packages only; the package's own cluster is not needed (we run private ones).
$sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null
# Debian's package may start its default cluster; wa-gateway never uses it.
$sudo service postgresql stop >/dev/null 2>&1 || true
have_server
