//! Usage rollups: calls and refusals counted in memory and folded into daily rows every
//! second, so reports read a few rows instead of scanning a log and the hot path never
//! writes to the database for accounting.

use crate::db::Db;
use chrono::NaiveDate;
use std::collections::HashMap;
use std::sync::Mutex;
use uuid::Uuid;

/// Which daily rollup a count goes to.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Rollup {
    /// Forwarded calls (`usage_daily`): the month's usage.
    Calls,
    /// Calls of test keys (`test_usage_daily`): served by the simulator, spending nothing.
    TestCalls,
    /// Refused calls by reason (`refusals_daily`).
    Refusals,
}

/// (rollup, tenant, day, endpoint or reason) → how many since the last flush.
type Pending = HashMap<(Rollup, Uuid, NaiveDate, &'static str), i64>;

/// The subject of the gateway's own upstream calls (`Quotas::admit_own`): no tenant, so no
/// usage row.
pub const GATEWAY_OWN: Uuid = Uuid::nil();

pub struct UsageRecorder {
    pool: Db,
    pending: Mutex<Pending>,
    /// One flush at a time: a report flushes first and must not read the rollups while the
    /// periodic flush is still writing what it took from `pending`.
    flushing: tokio::sync::Mutex<()>,
}

impl UsageRecorder {
    pub fn new(pool: Db) -> Self {
        Self {
            pool,
            pending: Mutex::default(),
            flushing: tokio::sync::Mutex::default(),
        }
    }

    pub fn record_call(&self, tenant: Uuid, day: NaiveDate, endpoint: &'static str) {
        self.count(Rollup::Calls, tenant, day, endpoint);
    }

    pub fn record_test_call(&self, tenant: Uuid, day: NaiveDate, endpoint: &'static str) {
        self.count(Rollup::TestCalls, tenant, day, endpoint);
    }

    pub fn record_refusal(&self, tenant: Uuid, day: NaiveDate, reason: &'static str) {
        self.count(Rollup::Refusals, tenant, day, reason);
    }

    fn count(&self, rollup: Rollup, tenant: Uuid, day: NaiveDate, name: &'static str) {
        if tenant == GATEWAY_OWN {
            return;
        }
        *self
            .pending
            .lock()
            .expect("usage poisoned")
            .entry((rollup, tenant, day, name))
            .or_default() += 1;
    }

    /// Writes what was counted since the last flush; on failure it is kept for the next one.
    pub async fn flush(&self) {
        let _one_at_a_time = self.flushing.lock().await;
        let pending = std::mem::take(&mut *self.pending.lock().expect("usage poisoned"));
        let mut failed = Pending::default();
        for ((rollup, tenant, day, name), n) in pending {
            match write(&self.pool, rollup, tenant, day, name, n).await {
                Ok(_) => {}
                // The tenant is gone: its usage goes with it.
                Err(e) if crate::db::constraint_violated(&e, tenant_fkey(rollup)) => {}
                Err(_) => {
                    failed.insert((rollup, tenant, day, name), n);
                }
            }
        }
        if !failed.is_empty() {
            let mut pending = self.pending.lock().expect("usage poisoned");
            for (k, n) in failed {
                *pending.entry(k).or_default() += n;
            }
        }
    }
}

fn tenant_fkey(rollup: Rollup) -> &'static str {
    match rollup {
        Rollup::Calls => "usage_daily_tenant_id_fkey",
        Rollup::TestCalls => "test_usage_daily_tenant_id_fkey",
        Rollup::Refusals => "refusals_daily_tenant_id_fkey",
    }
}

/// Adds `n` to one rollup row.
async fn write(
    pool: &Db,
    rollup: Rollup,
    tenant: Uuid,
    day: NaiveDate,
    name: &str,
    n: i64,
) -> Result<sqlx::postgres::PgQueryResult, sqlx::Error> {
    match rollup {
        Rollup::Calls => sqlx::query!(
            "INSERT INTO usage_daily (tenant_id, day, endpoint, requests) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, day, endpoint) DO UPDATE SET requests = usage_daily.requests + EXCLUDED.requests",
            tenant,
            day,
            name,
            n
        )
        .execute(pool)
        .await,
        Rollup::TestCalls => sqlx::query!(
            "INSERT INTO test_usage_daily (tenant_id, day, endpoint, requests) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, day, endpoint) DO UPDATE SET requests = test_usage_daily.requests + EXCLUDED.requests",
            tenant,
            day,
            name,
            n
        )
        .execute(pool)
        .await,
        Rollup::Refusals => sqlx::query!(
            "INSERT INTO refusals_daily (tenant_id, day, reason, refusals) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, day, reason) DO UPDATE SET refusals = refusals_daily.refusals + EXCLUDED.refusals",
            tenant,
            day,
            name,
            n
        )
        .execute(pool)
        .await,
    }
}
