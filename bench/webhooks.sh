#!/usr/bin/env bash
# The webhook relay benchmark, end to end on this machine: signed events posted to the
# gateway's ingress as the upstream posts them (bench/relay-load), stored durably (the ingress
# answers only after the commit; PostgreSQL with fsync and synchronous commit on), relayed by
# the delivery workers to a receiver in the load generator. Two runs against the release build:
#   burst:  EVENTS events from CONCURRENCY senders back to back: events/s end to end (first post
#           to last arrival) and at the ingress;
#   steady: RATE events/s for STEADY_SECS: p50/p99 from the post to the receiver's arrival.
# Prints both, with the events the ingress committed per transaction, and writes them to the
# "Webhook relay" section of docs/BENCHMARKS.md. Exits non-zero when anything failed or an
# event was lost.
#
#   bench/webhooks.sh                      # EVENTS=20000 CONCURRENCY=64 RATE=200 STEADY_SECS=20
#   BENCH_BIN=/tmp/wa-gateway-before bench/webhooks.sh   # another build of the gateway, to compare
#   PROFILE_SQL=1 bench/webhooks.sh        # also prints the statements PostgreSQL spent the burst on
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${EVENTS:-20000}
CONCURRENCY=${CONCURRENCY:-64}
RATE=${RATE:-200}
STEADY_SECS=${STEADY_SECS:-20}
KEY=bench-upstream-key

. scripts/lib.sh
if [ -z "${BENCH_BIN:-}" ]; then cargo build --release --locked --quiet; fi
BIN=${BENCH_BIN:-$PWD/target/release/wa-gateway}
CARGO_TARGET_DIR=$PWD/target/relay-load cargo build --release --locked --quiet \
  --manifest-path bench/relay-load/Cargo.toml
LOAD=$PWD/target/relay-load/release/relay-load

work_dir wagw-webhooks-bench
work=$WORK
on_exit 'if [ "$status" -eq 0 ]; then rm -rf "$work"; else echo "bench/webhooks.sh: failed; logs in $work" >&2; fi'
unset DATABASE_URL # always a throwaway cluster, and a durable one: commits cost what they cost
if [ "${PROFILE_SQL:-}" = 1 ]; then export PG_OPTIONS='-c shared_preload_libraries=pg_stat_statements'; fi
PG_DURABLE=1 throwaway_postgres

SIM_PORT=$(free_port)
GW_PORT=$(free_port)
RECEIVER=127.0.0.1:$(free_port)
"$BIN" sim --listen "127.0.0.1:$SIM_PORT" --key $KEY >"$work/sim.log" 2>&1 &
SIM_PID=$!
on_exit "kill $SIM_PID 2>/dev/null"
export WAGW_LISTEN=127.0.0.1:$GW_PORT WAGW_UPSTREAM_URL=http://127.0.0.1:$SIM_PORT WAGW_UPSTREAM_KEY=$KEY \
  WAGW_UPSTREAM_HOST=whatsapp-messaging-bot.p.rapidapi.com \
  WAGW_JWT_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n') \
  WAGW_WEBHOOK_ALLOW_PRIVATE=true RUST_LOG=warn \
  WAGW_WEBHOOK_MAX_PENDING_PER_TENANT=$((EVENTS * 2)) # the burst is one tenant's: past the default cap (10,000) its oldest would be dropped
"$BIN" migrate >/dev/null 2>&1
if [ "${PROFILE_SQL:-}" = 1 ]; then psql "$DATABASE_URL" -qc 'CREATE EXTENSION pg_stat_statements'; fi
"$BIN" admin create-tenant --name bench --plan custom --monthly-requests 1000000000 \
  --requests-per-second 100000 --max-sessions 10 >/dev/null
TENANT_KEY=$("$BIN" admin create-key --tenant bench --name bench --scopes '*' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
wait_http "http://127.0.0.1:$SIM_PORT/_sim/log" "$SIM_PID"
start_gateway "$BIN" "$work/gateway.log"

# One WORKING session subscribed to `message` at the load generator's receiver; the gateway
# registers its ingress with the simulator, which is how the token and key are learnt.
gw() { curl -fsS -H "x-api-key: $TENANT_KEY" -H 'content-type: application/json' "$@"; }
gw "http://$WAGW_LISTEN/v1/sessions" -d '{"name":"default"}' >/dev/null
UPSTREAM=$(psql "$DATABASE_URL" -Atc "SELECT upstream_name FROM sessions LIMIT 1")
curl -fsS -X POST "http://127.0.0.1:$SIM_PORT/_sim/sessions/$UPSTREAM/scan" >/dev/null
gw "http://$WAGW_LISTEN/v1/sessions/default/webhooks" \
  -d "{\"webhookUrl\":\"http://$RECEIVER/hook\",\"events\":[\"message\"],\"retries\":{\"policy\":\"constant\",\"delaySeconds\":1,\"attempts\":10}}" >/dev/null
IFS='|' read -r TOKEN HMAC_KEY < <(psql "$DATABASE_URL" -Atc \
  "SELECT token, hmac_key FROM webhook_ingress WHERE upstream_name = '$UPSTREAM'")
load() {
  "$LOAD" --ingress "http://$WAGW_LISTEN/webhooks/ingress/$TOKEN" --key "$HMAC_KEY" \
    --session "$UPSTREAM" --listen "$RECEIVER" "$@"
}
# Events per ingress transaction so far, from the gateway's histogram: "transactions events".
commits() {
  curl -fsS "http://$WAGW_LISTEN/metrics" | awk '
    /^wagw_webhook_ingress_batch_events_count / {n = $2}
    /^wagw_webhook_ingress_batch_events_sum / {s = $2}
    END {print n + 0, s + 0}'
}

# CPU time (user + system, clock ticks) used so far by PIDS... (those gone count 0).
ticks_of() {
  local pid t total=0
  for pid in "$@"; do
    t=$(sed -E 's/^.*\) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}')
    total=$((total + ${t:-0}))
  done
  echo "$total"
}
# "gateway postgres": the gateway's ticks, and those of the cluster's processes.
cpu_ticks() {
  local postmaster
  postmaster=$(head -n1 "$work/pg/data/postmaster.pid")
  # shellcheck disable=SC2046
  echo "$(ticks_of "$GATEWAY_PID") $(ticks_of "$postmaster" $(pgrep -P "$postmaster"))"
}

if [ "${PROFILE_SQL:-}" = 1 ]; then psql "$DATABASE_URL" -qAtc 'SELECT pg_stat_statements_reset()' >/dev/null; fi
before=$(commits)
cpu_before=$(cpu_ticks)
burst=$(load --events "$EVENTS" --concurrency "$CONCURRENCY" --prefix evt_burst) || {
  echo "bench/webhooks.sh: the burst run failed: $burst" >&2
  tail -n 50 "$work/gateway.log" >&2
  exit 1
}
after=$(commits)
cpu_after=$(cpu_ticks)
if [ "${PROFILE_SQL:-}" = 1 ]; then
  echo "the burst's statements by PostgreSQL time:"
  psql "$DATABASE_URL" -c "SELECT calls, round(total_exec_time) AS total_ms,
      round((total_exec_time / calls)::numeric, 3) AS mean_ms, left(regexp_replace(query, '\s+', ' ', 'g'), 90) AS query
    FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 12"
fi
steady=$(load --events $((RATE * STEADY_SECS)) --rate "$RATE" --prefix evt_steady) || {
  echo "bench/webhooks.sh: the steady run failed: $steady" >&2
  tail -n 50 "$work/gateway.log" >&2
  exit 1
}
echo "burst:  $burst"
echo "steady: $steady"

section=$(python3 - "$burst" "$steady" "$before" "$after" "$(nproc)" "$EVENTS" "$CONCURRENCY" "$RATE" "$STEADY_SECS" \
  "$cpu_before" "$cpu_after" "$(getconf CLK_TCK)" <<'PY'
import json, sys, platform, datetime
burst, steady = json.loads(sys.argv[1]), json.loads(sys.argv[2])
(t0, e0), (t1, e1) = (map(float, a.split()) for a in sys.argv[3:5])
cores, events, conc, rate, secs = sys.argv[5:10]
(g0, p0), (g1, p1) = (map(float, a.split()) for a in sys.argv[10:12])
hz = float(sys.argv[12])
us_per_event = lambda ticks: ticks / hz * 1e6 / burst["events"]
per_commit = (e1 - e0) / (t1 - t0) if t1 > t0 else float("nan")
def check(ok): return "met" if ok else "**missed**"
print("## Webhook relay")
print()
print("Produced by `bench/webhooks.sh`: signed events posted to the ingress as the upstream posts")
print("them (`bench/relay-load`), each answered only once committed (PostgreSQL with fsync and")
print("synchronous commit on), relayed by the delivery workers to a receiver in the load")
print("generator; the gateway (release build), PostgreSQL, the simulator and the load generator")
print("share the machine's %s cores." % cores)
print()
print("| run | events | end to end events/s | ingress events/s | p50 ms | p99 ms | max ms | lost | twice |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for name, r in (("burst, %s senders" % conc, burst), ("steady %s/s for %s s" % (rate, secs), steady)):
    print("| %s | %d | %d | %d | %.1f | %.1f | %.1f | %d | %d |" % (
        name, r["events"], r["end_to_end_events_per_s"], r["ingress_events_per_s"],
        r["p50_ms"], r["p99_ms"], r["max_ms"], r["missing"], r["duplicates"]))
print()
print("- end to end at full load: **%d events/s** (target >= 2,000 on 2 cores: %s)"
      % (burst["end_to_end_events_per_s"], check(burst["end_to_end_events_per_s"] >= 2000)))
print("- ingress to receiver at a steady %s events/s: p50 %.1f ms, p99 **%.1f ms** (target < 50 ms: %s)"
      % (rate, steady["p50_ms"], steady["p99_ms"], check(steady["p99_ms"] < 50)))
print("- the burst's events per ingress commit: %.1f on average (%d transactions for %d events)"
      % (per_commit, t1 - t0, e1 - e0))
print("- CPU per event in the burst: gateway %.0f us, PostgreSQL %.0f us, load generator and receiver %.0f us"
      % (us_per_event(g1 - g0), us_per_event(p1 - p0), burst["generator_cpu_s"] * 1e6 / burst["events"]))
print()
print("%s; %s UTC." % (platform.machine(), datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")))
PY
)
echo
echo "$section"
# The section replaces the one there (bench/proxy.sh keeps it when it rewrites the rest).
kept=$(sed '/^## Webhook relay/,$d' docs/BENCHMARKS.md 2>/dev/null || true)
{
  if [ -n "$kept" ]; then printf '%s\n\n' "$kept"; fi
  echo "$section"
} >docs/BENCHMARKS.md
echo "written to docs/BENCHMARKS.md"
