#!/usr/bin/env bash
# Swagger UI in headless Chromium (tests/browser/docs.mjs): /docs renders every operation,
# Authorize takes a tenant key, "Try it out" on POST /v1/sendText answers 201 from the sandbox.
# Screenshot: tests/output/swagger-sendText.png.
#
#   scripts/browser-test.sh            # throwaway PostgreSQL + sandbox gateway
#   DATABASE_URL=postgres://... scripts/browser-test.sh   # a disposable database of yours
#
# Chromium is Debian's `chromium` package, installed with apt-get when missing. Where it cannot
# be installed the test is skipped with a message (exit 0); set BROWSER_TEST_REQUIRED=1 (CI)
# to make that a failure instead.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

skip() {
  echo "browser test SKIPPED: $*" >&2
  [ "${BROWSER_TEST_REQUIRED:-0}" = 1 ] && exit 1
  exit 0
}

chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
  echo "Installing chromium with apt-get" >&2
  if [ "$(id -u)" -eq 0 ]; then sudo=; else sudo=sudo; fi
  { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium; } >&2 \
    || skip "chromium is not installed and apt-get could not install it"
  [ -x "$chromium" ] || skip "no chromium at $chromium after apt-get"
fi
command -v node >/dev/null || skip "node is not installed"

work=$(mktemp -d "${TMPDIR:-/tmp}/wagw-browser.XXXXXX")
chmod 755 "$work"
gateway_pid=
own_pg=
cleanup() {
  local status=$?
  [ -n "$gateway_pid" ] && kill "$gateway_pid" 2>/dev/null && wait "$gateway_pid" 2>/dev/null
  [ -n "$own_pg" ] && scripts/test-postgres.sh stop "$own_pg"
  if [ $status -ne 0 ]; then
    echo "browser test: gateway log in $work/gateway.log" >&2
  else
    rm -rf "$work"
  fi
  exit $status
}
trap cleanup EXIT

(cd tests/browser && npm ci --no-audit --no-fund --silent)

cargo build --quiet --bin wa-gateway
bin=$root/target/debug/wa-gateway

if [ -z "${DATABASE_URL:-}" ]; then
  own_pg=$work/pg
  eval "$(scripts/test-postgres.sh start "$own_pg")"
  DATABASE_URL=$WAGW_TEST_DATABASE_URL
fi
export DATABASE_URL

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
# Sandbox mode: no WAGW_UPSTREAM_KEY, so the simulator is the upstream.
export WAGW_LISTEN=127.0.0.1:$port
export WAGW_JWT_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
unset WAGW_UPSTREAM_KEY WAGW_UPSTREAM_URL

"$bin" migrate
"$bin" serve >"$work/gateway.log" 2>&1 &
gateway_pid=$!
for _ in $(seq 1 120); do
  curl -fsS "$base/readyz" >/dev/null 2>&1 && break
  kill -0 "$gateway_pid" 2>/dev/null || { cat "$work/gateway.log" >&2; exit 1; }
  sleep 0.5
done

"$bin" admin create-tenant --name browser --plan custom >/dev/null
key=$("$bin" admin create-key --tenant browser --name browser --scopes '*' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')

GATEWAY_URL=$base TENANT_KEY=$key CHROMIUM=$chromium OUTPUT_DIR=$root/tests/output \
  node tests/browser/docs.mjs
