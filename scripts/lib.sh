# shellcheck shell=bash
# What the scripts under scripts/ and bench/ share. Sourced, never run:
#   . "$(dirname "$0")/../scripts/lib.sh"
#
#   as_root CMD...          runs CMD as root (directly when we are root, else with sudo)
#   apt_install PKG...      installs Debian packages that are missing (quietly)
#   free_port               prints a free loopback TCP port
#   wait_http URL [PID]     waits up to 60 s for URL to answer 2xx; fails early when PID dies
#   on_exit CMD             runs CMD when the script exits (last registered runs first; CMD
#                           may read $status, the exit status)
#   work_dir PREFIX         makes a temporary directory (world-readable, for PostgreSQL) in WORK
#   throwaway_postgres      DATABASE_URL, or a fresh cluster under $WORK/pg stopped on exit
#   start_gateway BIN LOG   migrates and serves BIN in the background (GATEWAY_PID), waits for
#                           /readyz on $WAGW_LISTEN
set -euo pipefail

LIB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "not root and no sudo: cannot run $*" >&2
    return 2
  fi
}

apt_updated=
apt_install() {
  local missing=()
  local pkg
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing with apt-get: ${missing[*]}" >&2
  if [ -z "$apt_updated" ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_http() {
  local url=$1 pid=${2:-}
  local _
  for _ in $(seq 1 600); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      echo "the process serving $url exited" >&2
      return 1
    fi
    sleep 0.1 # poll
  done
  echo "no answer from $url after 60 s" >&2
  return 1
}

exit_hooks=()
on_exit() {
  exit_hooks=("$*" "${exit_hooks[@]}")
}
run_exit_hooks() {
  local status=$?
  local hook
  for hook in "${exit_hooks[@]}"; do
    eval "$hook" || true
  done
  exit $status
}
trap run_exit_hooks EXIT

work_dir() {
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  chmod 755 "$WORK"
}

throwaway_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then
    export DATABASE_URL
    return 0
  fi
  "$LIB_ROOT/scripts/install-postgres.sh"
  eval "$("$LIB_ROOT/scripts/test-postgres.sh" start "$WORK/pg")"
  on_exit "'$LIB_ROOT/scripts/test-postgres.sh' stop '$WORK/pg'"
  export DATABASE_URL=$WAGW_TEST_DATABASE_URL
}

start_gateway() {
  local bin=$1 log=$2
  "$bin" migrate >>"$log" 2>&1
  "$bin" serve >>"$log" 2>&1 &
  GATEWAY_PID=$!
  on_exit "kill $GATEWAY_PID 2>/dev/null && wait $GATEWAY_PID 2>/dev/null"
  if ! wait_http "http://$WAGW_LISTEN/readyz" "$GATEWAY_PID"; then
    cat "$log" >&2
    return 1
  fi
}
