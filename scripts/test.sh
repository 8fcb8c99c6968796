#!/usr/bin/env bash
# Runs every test: formatting, lints, the unit and integration tests against a real PostgreSQL
# (installed with apt when missing, started here and stopped at the end), then the
# conformance and browser checks. This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# SQL is checked at compile time against the committed .sqlx/ (scripts/sqlx-prepare.sh), as it
# is on a machine without PostgreSQL: a statement changed without regenerating it fails here.
export SQLX_OFFLINE=true

step() { printf '\n==> %s\n' "$*"; }

step "PostgreSQL server binaries"
scripts/install-postgres.sh

step "formatting and lints"
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings

step "a throwaway PostgreSQL for the tests"
pg_dir=$(mktemp -d /tmp/wagw-test-pg.XXXXXX)
trap 'scripts/test-postgres.sh stop "$pg_dir"' EXIT
eval "$(scripts/test-postgres.sh start "$pg_dir")"

step "the Standard Webhooks reference library for Python (the README's receiver, in a test)"
if python=$(scripts/python-verifier.sh); then
  export WAGW_PYTHON="$python" WAGW_REQUIRE_PYTHON_VERIFIER=1
elif [ "${WAGW_REQUIRE_PYTHON_VERIFIER:-}" = 1 ] || [ "${CI:-}" = true ]; then
  echo "python3 with standardwebhooks could not be had" >&2
  exit 1
else
  echo "python3 with standardwebhooks could not be had: that test will be skipped" >&2
fi

step "unit and integration tests"
if ! cargo test --locked --all-targets -- --test-threads="${WAGW_TEST_THREADS:-6}"; then
  step "the tests failed; the test PostgreSQL's state"
  scripts/test-postgres.sh report "$pg_dir"
  exit 1
fi

for extra in scripts/conformance.sh scripts/browser-test.sh; do
  if [ -x "$extra" ]; then
    step "$extra"
    "$extra"
  fi
done

if [ -f docker-compose.yml ]; then
  step "docker-compose.yml validates"
  scripts/validate-compose.sh
fi

step "all tests passed"
