#!/usr/bin/env bash
# Quick start: the gateway in sandbox mode on http://127.0.0.1:8080, with its own embedded
# PostgreSQL in ./.wa-gateway and the built-in simulator as the upstream. Any WAGW_* or
# DATABASE_URL setting in the environment is honoured (see README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DATABASE_URL:-}" ]; then
  scripts/install-postgres.sh
fi
exec cargo run --release --locked -- serve "$@"
