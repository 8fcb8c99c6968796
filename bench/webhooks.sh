#!/usr/bin/env bash
# The webhook relay benchmark: signed events posted to the gateway's ingress (as the upstream
# does) by concurrent senders, relayed through PostgreSQL (inbox, outbox, delivery workers) to a
# receiver, all on this machine. Prints events relayed per second end to end and the p50/p99
# from the moment an event is posted to the ingress to the moment the receiver has it.
#
#   bench/webhooks.sh                        # 2000 events, 32 senders, release build
#   EVENTS=5000 CONCURRENCY=64 bench/webhooks.sh
#   PROFILE=dev bench/webhooks.sh            # skip the release build
#
# PostgreSQL: WAGW_TEST_DATABASE_URL, else the test harness's private cluster under target/.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-release}
args=()
log=$(mktemp)
status=0
[ "$PROFILE" = release ] && args+=(--release)
WAGW_BENCH_EVENTS=${EVENTS:-2000} WAGW_BENCH_CONCURRENCY=${CONCURRENCY:-32} \
  cargo test "${args[@]}" --test api webhooks::relay_benchmark -- --ignored --nocapture \
  >"$log" 2>&1 || status=$?
grep -E "webhook relay:|panicked|FAILED|error" "$log" || true
# A benchmark that failed, or printed no figure, fails.
if [ "$status" -ne 0 ] || ! grep -q "webhook relay:" "$log"; then
  echo "bench/webhooks.sh: the benchmark failed (full output in $log)" >&2
  exit 1
fi
rm -f "$log"
