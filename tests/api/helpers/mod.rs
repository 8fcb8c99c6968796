//! The test harness: real PostgreSQL, the real application on a loopback port, the real binary
//! as a child process, the simulator as the upstream. Nothing is mocked.
//!
//! The PostgreSQL server comes from `WAGW_TEST_DATABASE_URL` (a superuser URL; `scripts/test.sh`
//! starts one), or else a private cluster under `target/` started once from the machine's server
//! binaries and left running between runs. Every test gets a fresh database on it.
#![allow(dead_code)]

mod api;
mod app;
mod db;
mod pg_relay;
mod process;
mod receiver;
mod relay;
mod sse;

pub use api::*;
pub use app::*;
pub use db::*;
pub use pg_relay::PgRelay;
pub use process::*;
pub use receiver::{Hit, Receiver};
pub use relay::*;
pub use sse::{Block, SseStream};

use secrecy::SecretString;
use serde_json::Value;
use std::time::{Duration, Instant};

pub const TEST_JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef0123456789abcdef";
/// The organisation's upstream key in tests; it must never reach a tenant or a log.
pub const UPSTREAM_KEY: &str = "org-upstream-key-7f3a9c";
/// The admin every test gateway bootstraps (`WAGW_ADMIN_USER` / `WAGW_ADMIN_PASSWORD`).
pub const ADMIN_USER: &str = "root";
pub const ADMIN_PASSWORD: &str = "correct-horse-battery-staple";

/// A temporary directory the `postgres` user can traverse (for embedded clusters when root).
pub fn shared_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("wagw-test-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Never hand a secret to `Debug`.
pub fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

/// The calls a simulator at `sim_url` received under `/v1`, oldest first; on a fresh
/// connection (a pooled one may have idled out while a test waited).
pub async fn sim_log_at(sim_url: &str) -> Vec<Value> {
    http_client()
        .get(format!("{sim_url}/_sim/log"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls `check` until it holds or `patience` runs out; returns whether it held.
pub async fn eventually<F, Fut>(patience: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + patience;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await; // poll
    }
}
