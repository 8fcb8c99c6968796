#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the test suite and prints its superuser URL.
# Usage: eval "$(scripts/test-postgres.sh start DIR)"   ...   scripts/test-postgres.sh stop DIR
#        scripts/test-postgres.sh report DIR   (after a failure: is it up, and what it logged)
# Tuned for tests, not durability (fsync off), listening on a unix socket only; with
# PG_DURABLE=1 it keeps PostgreSQL's durable defaults (fsync and synchronous commit on), for a
# benchmark of what a commit really costs; PG_OPTIONS adds server options (a profile:
# PG_OPTIONS='-c shared_preload_libraries=pg_stat_statements').
set -euo pipefail
action=$1
dir=$2
bin=$(dirname "$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n1)")

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$action" in
  start)
    mkdir -p "$dir"
    chmod 755 "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-instructions >/dev/null
    fast="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    [ "${PG_DURABLE:-}" = 1 ] && fast=""
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses='' -k $dir -c max_connections=500 $fast -c shared_buffers=256MB ${PG_OPTIONS:-}" \
      start >/dev/null
    echo "export WAGW_TEST_DATABASE_URL='postgres://postgres@localhost:5432/postgres?host=$dir'"
    ;;
  report)
    # A suite whose tests all lose the database at once says nothing about why; the server's
    # own log and the kernel's (an OOM kill, a failed fork) do.
    if as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      echo "PostgreSQL is still running"
    else
      echo "PostgreSQL is NOT running"
    fi
    echo "--- the last lines of $dir/server.log"
    tail -n 60 "$dir/server.log" 2>/dev/null || true
    echo "--- free disk where the cluster lives (a full disk PANICs its WAL writer)"
    df -h "$dir" 2>/dev/null || true
    echo "--- the kernel's recent kills, if it lets us read them"
    dmesg 2>/dev/null | grep -iE 'out of memory|oom|killed process' | tail -n 20 || true
    ;;
  stop)
    as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
esac
