#!/usr/bin/env bash
# OpenAPI conformance: the checked-in document is valid OpenAPI 3.0, and the running gateway
# answers as it says.
#
#   scripts/conformance.sh              # throwaway PostgreSQL + sandbox gateway (CI)
#   DATABASE_URL=postgres://... scripts/conformance.sh   # use this (disposable!) database
#
# 1. A Python venv under target/ with openapi-spec-validator and schemathesis (from PyPI).
# 2. openapi/wa-gateway.json validated as OpenAPI 3.0.
# 3. The gateway binary started in sandbox mode (the built-in simulator is the upstream) on a
#    disposable database, an admin from WAGW_ADMIN_USER/PASSWORD, a tenant and a `*` key made
#    with `wa-gateway admin create-tenant|create-key`, an admin JWT from POST /admin/v1/login.
# 4. schemathesis against it, one run per credential: /v1 with the tenant key, /admin/v1 with
#    the admin token, the operations endpoints with none. Checks: no 5xx, status codes,
#    content types, bodies and headers as documented, 405 for undeclared methods.
#
# Left out: adminChangeOwnPassword (POST /admin/v1/admins/me/password), the one operation that
# acts on the run's own credentials whatever schemathesis generates. The other destructive
# admin operations stay in: they take ids schemathesis cannot guess, so they answer 404.
#
# Knobs: CONFORMANCE_MAX_EXAMPLES (default 25), CONFORMANCE_SEED, CONFORMANCE_KEEP=1 keeps the
# work directory (logs, reports) for inspection.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
root=$(pwd)

venv=$root/target/conformance-venv
work_dir wagw-conformance
work=$WORK
# Reports stay for inspection when asked for, or when the run failed.
keep_or_remove() {
  local status=$1
  if [ "${CONFORMANCE_KEEP:-0}" = 1 ] || [ "$status" -ne 0 ]; then
    echo "conformance: logs and reports kept in $work" >&2
  else
    rm -rf "$work"
  fi
}
on_exit 'keep_or_remove $status'

say() { printf '\n== %s\n' "$*"; }

say "Python tools"
if [ ! -x "$venv/bin/st" ] || [ ! -x "$venv/bin/openapi-spec-validator" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet 'openapi-spec-validator>=0.7,<1' 'schemathesis>=4,<5'
fi
"$venv/bin/st" --version

say "openapi/wa-gateway.json is valid OpenAPI 3.0"
grep -q '"openapi": "3.0.3"' openapi/wa-gateway.json
"$venv/bin/openapi-spec-validator" --schema 3.0 openapi/wa-gateway.json

say "Building the gateway"
cargo build --quiet --bin wa-gateway
bin=$root/target/debug/wa-gateway

# The checked-in file is what the code prints (the test suite checks this too).
if ! diff -q <("$bin" openapi) openapi/wa-gateway.json >/dev/null; then
  echo "openapi/wa-gateway.json is stale: cargo run -- openapi > openapi/wa-gateway.json" >&2
  exit 1
fi

say "PostgreSQL"
throwaway_postgres

port=$(free_port)
base=http://127.0.0.1:$port
admin_user=conformance-admin
admin_password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')

# Sandbox mode: no WAGW_UPSTREAM_KEY, so the simulator is the upstream; nothing leaves the box.
export WAGW_LISTEN=127.0.0.1:$port
export WAGW_ADMIN_USER=$admin_user WAGW_ADMIN_PASSWORD=$admin_password
export WAGW_JWT_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
export WAGW_LOG_FORMAT=json
unset WAGW_UPSTREAM_KEY WAGW_UPSTREAM_URL

say "Starting the gateway on $base"
start_gateway "$bin" "$work/gateway.log"
diff -q <(curl -fsS "$base/openapi.json") openapi/wa-gateway.json

say "Credentials"
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
"$bin" admin create-tenant --name conformance --plan custom >"$work/tenant.json"
tenant_key=$("$bin" admin create-key --tenant conformance --name conformance --scopes '*' | json_field key)
admin_token=$(curl -fsS -X POST "$base/admin/v1/login" -H 'Content-Type: application/json' \
  -d "{\"username\": \"$admin_user\", \"password\": \"$admin_password\"}" | json_field access_token)
# A WORKING session named like the document's examples, so sends can succeed too.
curl -fsS -X POST "$base/v1/sessions" -H "X-Api-Key: $tenant_key" -H 'Content-Type: application/json' \
  -d '{"name": "default", "start": true}' >/dev/null || true

checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,unsupported_method
# One worker: hypothesis trips over its own lambda-source parsing with threads on Python 3.11.
common=(--url "$base" --checks "$checks" --max-examples "${CONFORMANCE_MAX_EXAMPLES:-25}"
  --workers 1 --request-timeout 40 --no-color --warnings off --continue-on-failure
  --suppress-health-check all)
[ -n "${CONFORMANCE_SEED:-}" ] && common+=(--seed "$CONFORMANCE_SEED")

status=0
run() {
  local name=$1; shift
  say "schemathesis: $name"
  # From the work directory: schemathesis keeps its example database in the current one.
  (cd "$work" && "$venv/bin/st" run "$root/openapi/wa-gateway.json" "${common[@]}" \
    --report junit --report-junit-path "$work/$name.junit.xml" "$@") || status=1
}

run tenant --include-path-regex '^/v1/' -H "X-Api-Key: $tenant_key"
run admin --include-path-regex '^/admin/v1/' -H "Authorization: Bearer $admin_token" \
  --exclude-operation-id adminChangeOwnPassword
run operations --include-path-regex '^/(healthz|readyz|metrics|openapi\.json)$'

if grep -q '"level":"ERROR"' "$work/gateway.log"; then
  say "The gateway logged errors"
  grep -m 20 '"level":"ERROR"' "$work/gateway.log"
  status=1
fi
[ $status -eq 0 ] && say "Conformance: OK" || say "Conformance: FAILED"
exit $status
