#!/usr/bin/env bash
# The browser tests in headless Chromium, against one gateway whose upstream is the simulator
# (`wa-gateway sim`, with the sandbox's auto-scan and a key the tests know):
# - tests/browser/docs.mjs: Swagger UI at /docs renders every operation, Authorize takes a
#   tenant key, "Try it out" on POST /v1/sendText answers 201 from the simulator;
# - tests/browser/console.mjs: the console at /console, as an admin (sign in and create a
#   tenant with the keyboard, keys, plans, quotas, suspend, delete, adopt, usage charts, every
#   admin view) and as a tenant on a phone-sized window (a session, its QR code until the
#   simulator scans it, then WORKING; webhooks to receivers of the test's own; the live tail).
# Screenshots: tests/output/swagger-sendText.png, tests/output/console-*.png.
#
#   scripts/browser-test.sh            # throwaway PostgreSQL + simulator + gateway
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
  if [ "$1" -ne 0 ]; then echo "browser test: gateway log in $WORK/gateway.log, simulator's in $WORK/sim.log" >&2; else rm -rf "$WORK"; fi
}
on_exit 'remove_unless_failed $status'

(cd tests/browser && npm ci --no-audit --no-fund --silent)

cargo build --quiet --bin wa-gateway
# Cargo's own target directory: CARGO_TARGET_DIR when set (relative to the repository, as
# cargo reads it from here), else target/.
target_dir=${CARGO_TARGET_DIR:-target}
case $target_dir in /*) ;; *) target_dir=$root/$target_dir ;; esac
bin=$target_dir/debug/wa-gateway

throwaway_postgres

# The upstream is the simulator, run as its own process (as bench/webhooks.sh does) rather
# than in-process as in sandbox mode: the same simulator, with the sandbox's auto-scan, but
# with a key the tests know, so that they can make a session on the upstream directly (one no
# tenant owns, for the console's "Adopt") and use its /_sim control API (faults).
sim_port=$(free_port)
sim_key=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
sim_host=whatsapp-messaging-bot.p.rapidapi.com
"$bin" sim --listen "127.0.0.1:$sim_port" --key "$sim_key" --host "$sim_host" --auto-scan 3 \
  --monthly 100000 >"$WORK/sim.log" 2>&1 &
sim_pid=$!
on_exit "kill $sim_pid 2>/dev/null && wait $sim_pid 2>/dev/null"
wait_http "http://127.0.0.1:$sim_port/_sim/log" "$sim_pid"

port=$(free_port)
base=http://127.0.0.1:$port
export WAGW_LISTEN=127.0.0.1:$port
export WAGW_UPSTREAM_URL=http://127.0.0.1:$sim_port WAGW_UPSTREAM_KEY=$sim_key WAGW_UPSTREAM_HOST=$sim_host
# The organisation's plan, so that its figures in the console are numbers.
export WAGW_UPSTREAM_MONTHLY=100000 WAGW_UPSTREAM_RPS=100
# The console test's webhook receivers listen on the loopback address.
export WAGW_WEBHOOK_ALLOW_PRIVATE=true
export WAGW_JWT_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
# The admin the console test signs in as.
export WAGW_ADMIN_USER=console-admin
export WAGW_ADMIN_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
start_gateway "$bin" "$WORK/gateway.log"

"$bin" admin create-tenant --name browser --plan custom >/dev/null
key=$("$bin" admin create-key --tenant browser --name browser --scopes '*' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')

GATEWAY_URL=$base TENANT_KEY=$key CHROMIUM=$chromium OUTPUT_DIR=$root/tests/output \
  node tests/browser/docs.mjs
GATEWAY_URL=$base ADMIN_USER=$WAGW_ADMIN_USER ADMIN_PASSWORD=$WAGW_ADMIN_PASSWORD CHROMIUM=$chromium \
  SIM_URL=http://127.0.0.1:$sim_port SIM_KEY=$sim_key SIM_HOST=$sim_host \
  OUTPUT_DIR=$root/tests/output node tests/browser/console.mjs
