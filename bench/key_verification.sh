#!/usr/bin/env bash
# Warm-path (moka cache) versus cold (PostgreSQL + argon2id) tenant key verification, per call.
# Needs a test PostgreSQL like the test suite (WAGW_TEST_DATABASE_URL or the server binaries).
set -euo pipefail
cd "$(dirname "$0")/.."
# pipefail: a failing benchmark fails the script; grep fails it too when no figure was printed.
cargo test --release --test api bench_key_verification -- --ignored --nocapture 2>&1 |
    grep --line-buffered "key verification"
