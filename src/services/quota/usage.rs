//! Usage rollups: calls and refusals counted in memory and folded into daily rows every
//! second, so reports read a few rows instead of scanning a log and the hot path never
//! writes to the database for accounting.

use crate::db::Db;
use chrono::NaiveDate;
use std::collections::HashMap;
use std::sync::Mutex;
use uuid::Uuid;

#[derive(Default)]
struct Pending {
    calls: HashMap<(Uuid, NaiveDate, &'static str), i64>,
    refusals: HashMap<(Uuid, NaiveDate, &'static str), i64>,
}

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
        if tenant == GATEWAY_OWN {
            return;
        }
        *self
            .pending
            .lock()
            .expect("usage poisoned")
            .calls
            .entry((tenant, day, endpoint))
            .or_default() += 1;
    }

    pub fn record_refusal(&self, tenant: Uuid, day: NaiveDate, reason: &'static str) {
        if tenant == GATEWAY_OWN {
            return;
        }
        *self
            .pending
            .lock()
            .expect("usage poisoned")
            .refusals
            .entry((tenant, day, reason))
            .or_default() += 1;
    }

    /// Writes what was counted since the last flush; on failure it is kept for the next one.
    pub async fn flush(&self) {
        let pool = &self.pool;
        let _one_at_a_time = self.flushing.lock().await;
        let Pending { calls, refusals } =
            std::mem::take(&mut *self.pending.lock().expect("usage poisoned"));
        let mut failed = Pending::default();
        for ((tenant, day, endpoint), n) in calls {
            let written = sqlx::query!(
                "INSERT INTO usage_daily (tenant_id, day, endpoint, requests) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant_id, day, endpoint) DO UPDATE SET requests = usage_daily.requests + EXCLUDED.requests",
                tenant,
                day,
                endpoint,
                n
            )
            .execute(pool)
            .await;
            match written {
                Ok(_) => {}
                // The tenant is gone: its usage goes with it.
                Err(e) if crate::db::constraint_violated(&e, "usage_daily_tenant_id_fkey") => {}
                Err(_) => {
                    failed.calls.insert((tenant, day, endpoint), n);
                }
            }
        }
        for ((tenant, day, reason), n) in refusals {
            let written = sqlx::query!(
                "INSERT INTO refusals_daily (tenant_id, day, reason, refusals) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant_id, day, reason) DO UPDATE SET refusals = refusals_daily.refusals + EXCLUDED.refusals",
                tenant,
                day,
                reason,
                n
            )
            .execute(pool)
            .await;
            match written {
                Ok(_) => {}
                Err(e) if crate::db::constraint_violated(&e, "refusals_daily_tenant_id_fkey") => {}
                Err(_) => {
                    failed.refusals.insert((tenant, day, reason), n);
                }
            }
        }
        if !failed.calls.is_empty() || !failed.refusals.is_empty() {
            let mut pending = self.pending.lock().expect("usage poisoned");
            for (k, n) in failed.calls {
                *pending.calls.entry(k).or_default() += n;
            }
            for (k, n) in failed.refusals {
                *pending.refusals.entry(k).or_default() += n;
            }
        }
    }
}
