#!/usr/bin/env bash
# Validates docker-compose.yml with the compose client (no Docker engine needed).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
command -v docker-compose >/dev/null 2>&1 || apt_install docker-compose
# Placeholder secrets: validation checks the structure, not the values.
POSTGRES_PASSWORD=placeholder docker-compose -f docker-compose.yml config -q
echo "docker-compose.yml is valid"
