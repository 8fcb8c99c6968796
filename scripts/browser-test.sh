#!/usr/bin/env bash
# The browser tests in headless Chromium, against one sandbox gateway:
# - tests/browser/docs.mjs: Swagger UI at /docs renders every operation, Authorize takes a
#   tenant key, "Try it out" on POST /v1/sendText answers 201 from the sandbox;
# - tests/browser/console.mjs: the console at /console, as an admin (sign in with the keyboard,
#   create a tenant and a key, usage charts, every admin view) and as that tenant on a phone-sized
#   window (create a session, its QR code until the sandbox scans it, then WORKING, a sent
#   message in the live tail of its events).
# Screenshots: tests/output/swagger-sendText.png, tests/output/console-*.png.
#
#   scripts/browser-test.sh            # throwaway PostgreSQL + sandbox gateway
#   DATABASE_URL=postgres://... scripts/browser-test.sh   # a disposable database of yours
#
# Chromium is Debian's `chromium` package, installed with apt-get when missing. Where it cannot
# be installed the test is skipped with a message (exit 0); set BROWSER_TEST_REQUIRED=1 (CI)
# to make that a failure instead.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
root=$(pwd)

skip() {
  echo "browser test SKIPPED: $*" >&2
  [ "${BROWSER_TEST_REQUIRED:-0}" = 1 ] && exit 1
  exit 0
}

chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
  apt_install chromium || skip "chromium is not installed and apt-get could not install it"
  [ -x "$chromium" ] || skip "no chromium at $chromium after apt-get"
fi
command -v node >/dev/null || skip "node is not installed"

work_dir wagw-browser
remove_unless_failed() {
  if [ "$1" -ne 0 ]; then echo "browser test: gateway log in $WORK/gateway.log" >&2; else rm -rf "$WORK"; fi
}
on_exit 'remove_unless_failed $status'

(cd tests/browser && npm ci --no-audit --no-fund --silent)

cargo build --quiet --bin wa-gateway
bin=$root/target/debug/wa-gateway

throwaway_postgres

port=$(free_port)
base=http://127.0.0.1:$port
# Sandbox mode: no WAGW_UPSTREAM_KEY, so the simulator is the upstream.
export WAGW_LISTEN=127.0.0.1:$port
export WAGW_JWT_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
# The admin the console test signs in as.
export WAGW_ADMIN_USER=console-admin
export WAGW_ADMIN_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
unset WAGW_UPSTREAM_KEY WAGW_UPSTREAM_URL
start_gateway "$bin" "$WORK/gateway.log"

"$bin" admin create-tenant --name browser --plan custom >/dev/null
key=$("$bin" admin create-key --tenant browser --name browser --scopes '*' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')

GATEWAY_URL=$base TENANT_KEY=$key CHROMIUM=$chromium OUTPUT_DIR=$root/tests/output \
  node tests/browser/docs.mjs
GATEWAY_URL=$base ADMIN_USER=$WAGW_ADMIN_USER ADMIN_PASSWORD=$WAGW_ADMIN_PASSWORD CHROMIUM=$chromium \
  OUTPUT_DIR=$root/tests/output node tests/browser/console.mjs
