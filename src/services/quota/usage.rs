//! Usage rollups: calls and refusals counted in memory and folded into daily rows every
//! second, so reports read a few rows instead of scanning a log and the hot path never
//! writes to the database for accounting.

use crate::db::Db;
use crate::domain::Mode;
use chrono::NaiveDate;
use std::collections::HashMap;
use std::sync::Mutex;
use uuid::Uuid;

/// Which daily rollup a count goes to.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Rollup {
    /// Calls (`usage_daily`) in a mode: the live ones are the month's usage, the test keys'
    /// were served by the simulator and spend nothing.
    Calls(Mode),
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
        self.count(Rollup::Calls(Mode::Live), tenant, day, endpoint);
    }

    pub fn record_test_call(&self, tenant: Uuid, day: NaiveDate, endpoint: &'static str) {
        self.count(Rollup::Calls(Mode::Test), tenant, day, endpoint);
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

    /// Writes what was counted since the last flush, one statement a rollup; what fails is
    /// kept for the next flush.
    pub async fn flush(&self) {
        let _one_at_a_time = self.flushing.lock().await;
        let pending = std::mem::take(&mut *self.pending.lock().expect("usage poisoned"));
        let (calls, refusals): (Pending, Pending) = pending
            .into_iter()
            .partition(|((rollup, ..), _)| matches!(rollup, Rollup::Calls(_)));
        let written = [
            write_calls(&self.pool, &calls).await,
            write_refusals(&self.pool, &refusals).await,
        ];
        for (rows, result) in [calls, refusals].into_iter().zip(written) {
            if result.is_err() {
                let mut pending = self.pending.lock().expect("usage poisoned");
                for (k, n) in rows {
                    *pending.entry(k).or_default() += n;
                }
            }
        }
    }
}

/// The rows of one rollup as column arrays, for one `UNNEST` insert.
#[derive(Default)]
struct Columns {
    tenants: Vec<Uuid>,
    days: Vec<NaiveDate>,
    modes: Vec<String>,
    names: Vec<String>,
    counts: Vec<i64>,
}

impl Columns {
    fn of(rows: &Pending) -> Self {
        let mut columns = Self::default();
        for (&(rollup, tenant, day, name), &n) in rows {
            columns.tenants.push(tenant);
            columns.days.push(day);
            if let Rollup::Calls(mode) = rollup {
                columns.modes.push(mode.as_str().to_owned());
            }
            columns.names.push(name.to_owned());
            columns.counts.push(n);
        }
        columns
    }
}

// Rows of a tenant deleted since they were counted are left out (its usage goes with it): the
// join keeps one deleted tenant from failing everyone's flush.
async fn write_calls(pool: &Db, rows: &Pending) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let c = Columns::of(rows);
    sqlx::query!(
        "INSERT INTO usage_daily (tenant_id, day, mode, endpoint, requests)
         SELECT u.* FROM UNNEST($1::uuid[], $2::date[], $3::text[], $4::text[], $5::int8[])
                AS u (tenant_id, day, mode, endpoint, requests)
           JOIN tenants t ON t.id = u.tenant_id
         ON CONFLICT (tenant_id, day, mode, endpoint)
         DO UPDATE SET requests = usage_daily.requests + EXCLUDED.requests",
        &c.tenants,
        &c.days,
        &c.modes,
        &c.names,
        &c.counts
    )
    .execute(pool)
    .await
    .map(drop)
}

async fn write_refusals(pool: &Db, rows: &Pending) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let c = Columns::of(rows);
    sqlx::query!(
        "INSERT INTO refusals_daily (tenant_id, day, reason, refusals)
         SELECT u.* FROM UNNEST($1::uuid[], $2::date[], $3::text[], $4::int8[])
                AS u (tenant_id, day, reason, refusals)
           JOIN tenants t ON t.id = u.tenant_id
         ON CONFLICT (tenant_id, day, reason)
         DO UPDATE SET refusals = refusals_daily.refusals + EXCLUDED.refusals",
        &c.tenants,
        &c.days,
        &c.names,
        &c.counts
    )
    .execute(pool)
    .await
    .map(drop)
}
