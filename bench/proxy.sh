#!/usr/bin/env bash
# The forwarding benchmark: in one run on this machine, a load generator against
#   (a) the simulator directly (`sim --no-webhooks`: forwarding alone is measured),
#   (b) nginx proxying to the simulator with the upstream headers added (bench/nginx.conf.template),
#   (c) a bare forwarder on the gateway's own stack (bench/forwarder: actix-web in, awc out, the
#       two headers added, nothing else), built in the same run: the stack's own ceiling,
#   (d) the gateway with auth, ownership and quotas on (quotas high enough never to refuse),
# for POST /v1/sendText and GET /v1/sessions. Prints requests/s, p50, p99 and the CPU each
# proxy spent per call (from /proc/<pid>/stat over the run), the gateway's throughput as a ratio
# to nginx's and its CPU per call as a ratio to the bare forwarder's, the p99 the gateway adds at
# half its peak load, and its peak memory; writes the table to docs/BENCHMARKS.md.
#
#   bench/proxy.sh                     # DURATION=10s CONNECTIONS=64 by default
#   BENCH_BIN=/tmp/wa-gateway-before bench/proxy.sh   # another build of the gateway, to compare
#   PROFILE=1 bench/proxy.sh           # also: syscalls and wake-ups per sendText call (strace),
#                                      # gateway and bare forwarder, and the gateway's hottest
#                                      # symbols (perf, a build with line tables in target/profile)
#
# Needs wrk and nginx (installed with apt when missing) and, for the fixed-rate run, oha
# (installed with `cargo install oha --locked` when missing, about 5 minutes; if that fails the
# row is skipped with a message). On a machine with 4 cores or more the load generators are
# pinned apart from the gateway with taskset; on 2 cores they share them (said in the table).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
KEY=bench-upstream-key
HOST=whatsapp-messaging-bot.p.rapidapi.com
SIM_PORT=18181 NGINX_PORT=18182 GW_PORT=18183 FWD_PORT=18184

. scripts/lib.sh
command -v wrk >/dev/null 2>&1 || apt_install wrk
command -v nginx >/dev/null 2>&1 || apt_install nginx

if [ -n "${BENCH_BIN:-}" ]; then
  BIN=$BENCH_BIN
elif [ "${PROFILE:-}" = 1 ]; then
  # Symbols and lines for perf; the code is the release build's.
  CARGO_PROFILE_RELEASE_DEBUG=line-tables-only CARGO_TARGET_DIR=$PWD/target/profile \
    cargo build --release --locked --quiet
  BIN=$PWD/target/profile/release/wa-gateway
else
  cargo build --release --locked --quiet
  BIN=$PWD/target/release/wa-gateway
fi
CARGO_TARGET_DIR=$PWD/target/forwarder cargo build --release --locked --quiet \
  --manifest-path bench/forwarder/Cargo.toml
FORWARDER=$PWD/target/forwarder/release/bare-forwarder

work_dir wagw-bench
work=$WORK
pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
}
on_exit 'rm -rf "$work"'
on_exit stop_all

# PostgreSQL, the simulator, nginx, the gateway.
unset DATABASE_URL # always a throwaway cluster: the benchmark creates tenants
throwaway_postgres
"$BIN" sim --listen 127.0.0.1:$SIM_PORT --key $KEY --no-webhooks >"$work/sim.log" 2>&1 &
SIM_PID=$!
pids+=($SIM_PID)
"$FORWARDER" 127.0.0.1:$FWD_PORT http://127.0.0.1:$SIM_PORT $KEY $HOST >"$work/forwarder.log" 2>&1 &
FWD_PID=$!
pids+=($FWD_PID)
sed -e "s|@WORK@|$work|g" -e "s|@SIM_PORT@|$SIM_PORT|g" -e "s|@NGINX_PORT@|$NGINX_PORT|g" -e "s|@KEY@|$KEY|g" \
  bench/nginx.conf.template >"$work/nginx.conf"
nginx -c "$work/nginx.conf" -p "$work"
nginx_pids() { echo "$(cat "$work/nginx.pid") $(pgrep -P "$(cat "$work/nginx.pid")" | tr '\n' ' ')"; }
export WAGW_LISTEN=127.0.0.1:$GW_PORT WAGW_UPSTREAM_URL=http://127.0.0.1:$SIM_PORT WAGW_UPSTREAM_KEY=$KEY \
  WAGW_UPSTREAM_HOST=$HOST WAGW_JWT_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n') \
  RUST_LOG=warn
"$BIN" migrate >/dev/null 2>&1
"$BIN" admin create-tenant --name bench --plan custom --monthly-requests 1000000000 \
  --requests-per-second 100000 --max-sessions 10 >/dev/null
TENANT_KEY=$("$BIN" admin create-key --tenant bench --name bench --scopes '*' | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
"$BIN" serve >"$work/gateway.log" 2>&1 &
GW_PID=$!
pids+=($GW_PID)
wait_http "http://127.0.0.1:$SIM_PORT/_sim/log"
wait_http "http://127.0.0.1:$GW_PORT/readyz"

# One WORKING session, created (and so started) through the gateway; the simulator knows it by its upstream name.
gw() { curl -fs -H "x-api-key: $TENANT_KEY" -H 'content-type: application/json' "$@"; }
gw "http://127.0.0.1:$GW_PORT/v1/sessions" -d '{"name":"default"}' >/dev/null
UPSTREAM_SESSION=$(psql "$DATABASE_URL" -Atc "SELECT upstream_name FROM sessions LIMIT 1")
curl -fs -X POST "http://127.0.0.1:$SIM_PORT/_sim/sessions/$UPSTREAM_SESSION/scan" >/dev/null

send_body() { printf '{"session":"%s","chatId":"1234567890","text":"benchmark"}' "$1"; }

cores=$(nproc)
pin_gen=()
pinned="generators not pinned: $cores cores, shared with the proxies"
if [ "$cores" -ge 4 ]; then
  pin_gen=(taskset -c "$((cores - 1))")
  pinned="generators pinned to core $((cores - 1)) with taskset, apart from the proxies"
fi

# CPU time (user + system, in clock ticks) the processes PIDS... have used so far.
cpu_ticks() {
  local total=0 pid
  for pid in "$@"; do
    # Fields 14 and 15 of /proc/<pid>/stat, counted after the command name's closing paren.
    total=$((total + $(sed -E 's/^.*\) //' "/proc/$pid/stat" | awk '{print $12 + $13}')))
  done
  echo $total
}

# run NAME URL METHOD BODY HEADER_NAME HEADER_VALUE "PIDS" -> "rps p50_ms p99_ms cpu_us_per_call"
run() {
  local out before after
  local host=""
  [ "$5" = x-rapidapi-key ] && host=$HOST
  before=$(cpu_ticks $7)
  out=$(METHOD=$3 BODY=$4 HEADER_NAME=$5 HEADER_VALUE=$6 UPSTREAM_HOST=$host \
    "${pin_gen[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/request.lua "$2")
  after=$(cpu_ticks $7)
  echo "$out" >"$work/wrk-$1.txt"
  python3 - "$work/wrk-$1.txt" "$((after - before))" "$(getconf CLK_TCK)" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
ticks, hz = int(sys.argv[2]), int(sys.argv[3])
def ms(label):
    m = re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s)\s*$" % label, text, re.M)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
if non2xx:
    sys.exit("refused or failed answers during the run: %s (see %s)" % (non2xx.group(1), sys.argv[1]))
calls = int(re.search(r"(\d+) requests in", text).group(1))
print("%.0f %.2f %.2f %.1f" % (rps, ms("50"), ms("99"), ticks / hz * 1e6 / calls))
PY
}

declare -A result
for endpoint in sendText sessions; do
  if [ $endpoint = sendText ]; then method=POST; else method=GET; fi
  up_body="" gw_body=""
  [ $method = POST ] && up_body=$(send_body "$UPSTREAM_SESSION") && gw_body=$(send_body default)
  result[sim,$endpoint]=$(run sim-$endpoint "http://127.0.0.1:$SIM_PORT/v1/$endpoint" $method "$up_body" x-rapidapi-key $KEY "$SIM_PID")
  result[nginx,$endpoint]=$(run nginx-$endpoint "http://127.0.0.1:$NGINX_PORT/v1/$endpoint" $method "$up_body" "" "" "$(nginx_pids)")
  result[forwarder,$endpoint]=$(run forwarder-$endpoint "http://127.0.0.1:$FWD_PORT/v1/$endpoint" $method "$up_body" "" "" "$FWD_PID")
  result[gateway,$endpoint]=$(run gateway-$endpoint "http://127.0.0.1:$GW_PORT/v1/$endpoint" $method "$gw_body" x-api-key "$TENANT_KEY" "$GW_PID")
done

# 1,000 connections against an upstream answering in 300 ms: calls in flight must not be
# capped below what the simulator serves directly.
curl -fs -X POST "http://127.0.0.1:$SIM_PORT/_sim/faults" -H 'content-type: application/json' \
  -d '{"path": "/v1/sendText", "method": "POST", "delayMs": 300}' >/dev/null
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
saved_connections=$CONNECTIONS
CONNECTIONS=1000
slow_sim=$(run slow-sim "http://127.0.0.1:$SIM_PORT/v1/sendText" POST "$(send_body "$UPSTREAM_SESSION")" x-rapidapi-key $KEY "$SIM_PID")
slow_gw=$(run slow-gateway "http://127.0.0.1:$GW_PORT/v1/sendText" POST "$(send_body default)" x-api-key "$TENANT_KEY" "$GW_PID")
CONNECTIONS=$saved_connections
curl -fs -X DELETE "http://127.0.0.1:$SIM_PORT/_sim/faults" >/dev/null
slow=$(python3 -c "
s, g = '$slow_sim'.split(), '$slow_gw'.split()
print('%s req/s through the gateway, %s direct: **%.2f** (target >= 0.9); p50 %s ms (target within 10%% of 300 ms)' % (g[0], s[0], float(g[0]) / float(s[0]), g[1]))")

# The p99 the gateway adds at half its peak load: the same fixed rate against the simulator
# directly and through the gateway (oha holds a rate; wrk does not).
command -v oha >/dev/null 2>&1 || cargo install oha --locked --quiet || true
added="skipped: oha is not installed and could not be (cargo install oha --locked)"
if command -v oha >/dev/null 2>&1; then
  half=$(( ${result[gateway,sendText]%% *} / 2 ))
  p99_at() { # URL HEADER BODY [HEADER]
    "${pin_gen[@]}" oha --no-tui -q "$half" -z "$DURATION" -c "$CONNECTIONS" -m POST -H "$2" -H "${4:-x-bench: 1}" -H 'content-type: application/json' \
      -d "$3" --output-format json "$1" 2>/dev/null |
      python3 -c 'import json,sys; print("%.3f" % (json.load(sys.stdin)["latencyPercentiles"]["p99"] * 1000))'
  }
  sim_p99=$(p99_at "http://127.0.0.1:$SIM_PORT/v1/sendText" "x-rapidapi-key: $KEY" "$(send_body "$UPSTREAM_SESSION")" "x-rapidapi-host: $HOST")
  gw_p99=$(p99_at "http://127.0.0.1:$GW_PORT/v1/sendText" "x-api-key: $TENANT_KEY" "$(send_body default)")
  added=$(python3 -c "print('%.3f ms (p99 %s ms through the gateway, %s ms direct, at %d req/s)' % ($gw_p99 - $sim_p99, '$gw_p99', '$sim_p99', $half))")
fi
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$GW_PID/status")

report=$(slow=$slow pinned=$pinned python3 - "$added" "$rss_kb" "$DURATION" "$CONNECTIONS" \
  "${result[sim,sendText]}" "${result[nginx,sendText]}" "${result[forwarder,sendText]}" "${result[gateway,sendText]}" \
  "${result[sim,sessions]}" "${result[nginx,sessions]}" "${result[forwarder,sessions]}" "${result[gateway,sessions]}" <<'PY'
import os, sys, platform, datetime
added, rss_kb, duration, conns = sys.argv[1:5]
slow, pinned = os.environ["slow"], os.environ["pinned"]
rows = [r.split() for r in sys.argv[5:]]
names = ["simulator (direct)", "nginx -> simulator", "bare forwarder -> simulator", "wa-gateway -> simulator"]
n = len(names)
out = ["| endpoint | target | req/s | p50 ms | p99 ms | CPU us/call |", "| --- | --- | ---: | ---: | ---: | ---: |"]
for i, endpoint in enumerate(["POST /v1/sendText", "GET /v1/sessions"]):
    for j, name in enumerate(names):
        rps, p50, p99, cpu = rows[i * n + j]
        out.append("| %s | %s | %s | %s | %s | %s |" % (endpoint, name, rps, p50, p99, cpu))
ratios = []
for i, endpoint in enumerate(["POST /v1/sendText", "GET /v1/sessions"]):
    nginx, fwd, gw = (rows[i * n + j] for j in (1, 2, 3))
    ratios.append("- %s: gateway / nginx throughput = **%.2f** (target >= 0.75; the bare forwarder: %.2f)"
                  % (endpoint, float(gw[0]) / float(nginx[0]), float(fwd[0]) / float(nginx[0])))
    ratios.append("- %s: gateway / bare forwarder CPU per call = **%.2f** (target <= 1.3)"
                  % (endpoint, float(gw[3]) / float(fwd[3])))
print("\n".join(out))
print()
print("\n".join(ratios))
print("- p99 added by the gateway at half its peak sendText load: %s (target < 2 ms)" % added)
print("- 1,000 connections, upstream answering in 300 ms: %s" % slow)
print("- gateway peak memory (VmHWM): **%.1f MB** (target < 100 MB)" % (int(rss_kb) / 1024))
print()
print("wrk, %s per run, %s connections, 2 threads; %s; %s; %s UTC." % (duration, conns, pinned, platform.machine(), datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M")))
PY
)
echo "$report"
mkdir -p docs
# bench/webhooks.sh's section is kept as it is.
relay_section=$(sed -n '/^## Webhook relay/,$p' docs/BENCHMARKS.md 2>/dev/null || true)
{
  echo "# Benchmarks"
  echo
  echo "Produced by \`bench/proxy.sh\` (forwarding: auth, session ownership, quotas on; quotas high"
  echo "enough never to refuse). Every target was measured in the same run on the same machine"
  echo "(2 cores shared by the load generator, the simulator, nginx, the bare forwarder, PostgreSQL"
  echo "and the gateway); CPU per call is the proxy's own user + system time over the run."
  echo
  echo "$report"
  if [ -n "$relay_section" ]; then echo; echo "$relay_section"; fi
} >docs/BENCHMARKS.md
echo "written to docs/BENCHMARKS.md"

# Where the gateway's CPU goes next to the bare forwarder's: the same 4,000 sendText calls (`traced_calls`)
# through each under strace, counted per call, then a perf profile of the gateway under load.
# Last, after the table is written, so neither tool's slowdown counts in it.
if [ "${PROFILE:-}" = 1 ] && command -v oha >/dev/null 2>&1; then
  command -v strace >/dev/null 2>&1 || apt_install strace
  traced_calls=4000
  per_call() { # NAME PID URL HEADER BODY
    timeout 120 strace -c -f -p "$2" -o "$work/strace-$1.txt" 2>/dev/null &
    local tracer=$!
    sleep 1
    oha --no-tui -n "$traced_calls" -c 16 -m POST -H "$4" -H 'content-type: application/json' -d "$5" "$3" >/dev/null
    sleep 0.5
    kill -INT $tracer 2>/dev/null || true
    wait $tracer 2>/dev/null || true
    # strace -c's columns: % time, seconds, usecs/call, calls, [errors,] syscall.
    awk -v who="$1" -v c="$traced_calls" '$NF ~ /^(sendto|recvfrom|epoll_wait|write|writev|futex)$/ {n[$NF] = $4}
      END {printf "| %s | %.2f | %.2f | %.2f | %.2f | %.2f |\n", who, n["sendto"]/c, n["recvfrom"]/c,
           n["epoll_wait"]/c, (n["write"] + n["writev"])/c, n["futex"]/c}' "$work/strace-$1.txt"
  }
  echo
  echo "| proxy | sendto/call | recvfrom/call | epoll_wait/call | write/call (wake-ups) | futex/call |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: |"
  per_call "bare forwarder" "$FWD_PID" "http://127.0.0.1:$FWD_PORT/v1/sendText" "x-bench: 1" "$(send_body "$UPSTREAM_SESSION")"
  per_call "wa-gateway" "$GW_PID" "http://127.0.0.1:$GW_PORT/v1/sendText" "x-api-key: $TENANT_KEY" "$(send_body default)"
  if command -v perf >/dev/null 2>&1; then
    METHOD=POST BODY=$(send_body default) HEADER_NAME=x-api-key HEADER_VALUE=$TENANT_KEY UPSTREAM_HOST="" \
      wrk -t"$THREADS" -c"$CONNECTIONS" -d12s -s bench/request.lua "http://127.0.0.1:$GW_PORT/v1/sendText" >/dev/null &
    load=$!
    sleep 1
    perf record -q -F 999 -g -p "$GW_PID" -o "$work/perf.data" -- sleep 8 >/dev/null 2>&1 || true
    wait $load || true
    echo
    echo "The gateway's hottest symbols under sendText load (self time):"
    perf report -i "$work/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null |
      grep -E '^ +[0-9]' | sed -E 's/ {2,}/ /g' | cut -c1-120 | awk 'NR <= 25'
  fi
fi
