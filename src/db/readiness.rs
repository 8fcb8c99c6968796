//! Whether this replica may take traffic: the database answers and is migrated, probed at
//! most once a second however often `/readyz` is asked.

use crate::db::Db;
use std::time::Duration;

/// Readiness must answer within a second even while the database hangs.
const READY_DEADLINE: Duration = Duration::from_millis(900);
/// How long one database ping answers `/readyz` for: a flood of probes costs at most one ping
/// a second per replica.
pub const READY_CACHE: Duration = Duration::from_secs(1);

/// What the last database ping found, kept for [`READY_CACHE`]; concurrent probes at expiry
/// wait for one ping instead of each sending their own.
pub struct Readiness(moka::future::Cache<(), Probe>);

#[derive(Clone)]
pub enum Probe {
    Ready,
    NotReady(std::sync::Arc<anyhow::Error>),
    TimedOut,
}

impl Readiness {
    pub fn new() -> Self {
        Self(
            moka::future::Cache::builder()
                .max_capacity(1)
                .time_to_live(READY_CACHE)
                .build(),
        )
    }

    pub async fn probe(&self, pool: &Db) -> Probe {
        let ping = async {
            match tokio::time::timeout(READY_DEADLINE, crate::db::is_ready(pool)).await {
                Ok(Ok(())) => Probe::Ready,
                Ok(Err(e)) => Probe::NotReady(std::sync::Arc::new(e)),
                Err(_) => Probe::TimedOut,
            }
        };
        self.0.get_with((), ping).await
    }
}

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}
