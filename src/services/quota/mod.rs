//! Who gets the organisation's upstream plan: per-tenant monthly, per-second and session
//! limits, and the organisation's own budget, all enforced in PostgreSQL so they hold across
//! any number of replicas.
//!
//! Admission is all-or-nothing: limits are taken in order (tenant month, tenant rate,
//! organisation month, upstream rate) and a refusal by one gives back what the earlier ones
//! took. Calls the gateway refuses itself count nothing.

pub mod clock;
mod limit;
mod monthly;
mod rate;
mod report;
mod standing;
mod upstream_gate;
mod usage;

pub use clock::{Clock, OffsetClock, SystemClock};
pub use limit::{Limit, QuotaError, Refusal};
pub use monthly::MonthlyStanding;
pub use report::{
    DayUsage, EndpointUsage, RefusalCount, SessionPacing, TestUsage, TopUp, UsageReport,
};
pub use standing::UpstreamReport;
pub use upstream_gate::QueueReport;

use crate::config::QuotaConfig;
use crate::db::Db;
use crate::domain::Tenant;
use chrono::{DateTime, Utc};
use monthly::{MonthlyQuotas, MonthlyRefusal};
use rate::{RateDecision, RateLimits};
use standing::UpstreamStanding;
use std::sync::Arc;
use upstream_gate::{GateRefusal, UpstreamGate};
use usage::UsageRecorder;
use uuid::Uuid;

/// The organisation's plan in `quota_months`.
const UPSTREAM_SUBJECT: &str = "upstream";
/// Largest block of monthly quota a replica reserves at once.
const MAX_LEASE: i64 = 100;

/// A call's claim on every limit, until it is `commit`ted (forwarded) or `cancel`led.
#[must_use = "an admission must be committed or cancelled"]
pub struct Admission {
    tenant: Uuid,
    endpoint: &'static str,
    month: clock::MonthKey,
    /// The counted limits taken so far, in order (the upstream slot is held in `slot`).
    taken: Vec<Limit>,
    /// The upstream budget's slot, held until the call is settled.
    slot: Option<i32>,
    /// Where the slot goes back when the admission is dropped unsettled.
    gate: Option<Arc<UpstreamGate>>,
    pub rate_remaining: Option<u32>,
}

/// A request dropped between admission and settlement (a panic, a cancelled future, a
/// shutdown) must not hold the organisation's per-second slot until `HOLD_MS` runs out: its
/// slot is released in the background. (Its tenant's month and rate counts stay taken: a
/// dropped call may have reached the upstream.)
impl Drop for Admission {
    fn drop(&mut self) {
        let (Some(slot), Some(gate)) = (self.slot.take(), self.gate.take()) else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { gate.release(slot).await });
        }
    }
}

/// What a tenant's quota headers report (see `http::quota_headers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaStanding {
    pub monthly: Option<MonthlyFigures>,
    pub rate: Option<RateFigures>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthlyFigures {
    pub allowance: i64,
    pub remaining: i64,
    pub reset_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateFigures {
    pub per_second: i32,
    pub remaining: i64,
}

pub struct Quotas {
    pool: Db,
    monthly: MonthlyQuotas,
    rates: RateLimits,
    gate: Option<Arc<UpstreamGate>>,
    upstream_monthly: Option<i64>,
    pub upstream_max_sessions: Option<u32>,
    usage: UsageRecorder,
    clock: Arc<dyn Clock>,
    standing: UpstreamStanding,
}

impl Quotas {
    pub async fn new(
        pool: Db,
        config: &QuotaConfig,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let gate = match config.upstream_rps {
            Some(rps) => {
                Some(UpstreamGate::new(pool.clone(), rps, config.upstream_queue_wait).await?)
            }
            None => None,
        };
        Ok(Self {
            pool: pool.clone(),
            monthly: MonthlyQuotas::new(pool.clone(), MAX_LEASE),
            rates: RateLimits::new(pool.clone()),
            gate,
            upstream_monthly: config.upstream_monthly.map(|m| m as i64),
            upstream_max_sessions: config.upstream_max_sessions,
            usage: UsageRecorder::new(pool),
            clock,
            standing: UpstreamStanding::default(),
        })
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The limits a call of `tenant` is admitted against, in the order they are taken.
    fn limits(&self, tenant: &Tenant) -> Vec<Limit> {
        let quota = &tenant.quota;
        let tenant_monthly = quota
            .monthly_requests
            .map(|requests| Limit::TenantMonthly { requests });
        let tenant_rate = quota.requests_per_second.map(|rate| Limit::TenantRate {
            per_second: rate.max(1) as u32,
        });
        let upstream_monthly = self
            .upstream_monthly
            .map(|requests| Limit::UpstreamMonthly { requests });
        let upstream_rate = self.gate.as_ref().map(|gate| Limit::UpstreamRate {
            per_second: gate.slots(),
        });
        [tenant_monthly, tenant_rate, upstream_monthly, upstream_rate]
            .into_iter()
            .flatten()
            .collect()
    }

    /// Counts a call of a test key: it reaches only the simulator, so no limit here applies
    /// (the key's own request limiter did, at authentication) and the month is not touched.
    pub fn record_test_call(&self, tenant: Uuid, endpoint: &'static str) {
        self.usage
            .record_test_call(tenant, self.clock.now().date_naive(), endpoint);
    }

    /// Counts a refusal of the tenant's decided outside the quotas (pacing), under `reason`.
    pub fn record_refusal(&self, tenant: Uuid, reason: &'static str) {
        self.usage
            .record_refusal(tenant, self.clock.now().date_naive(), reason);
    }

    /// Admits one of the gateway's own calls (admin routes, clean-up): it belongs to no
    /// tenant, so only the organisation's budget applies and no tenant's usage counts it.
    pub async fn admit_own(&self, endpoint: &'static str) -> Result<Admission, QuotaError> {
        let gateway = Tenant {
            id: usage::GATEWAY_OWN,
            name: String::new(),
            quota: crate::domain::Quota {
                monthly_requests: None,
                requests_per_second: None,
                max_sessions: None,
            },
            plan: crate::domain::Plan::Custom,
            status: crate::domain::TenantStatus::Active,
            created_at: chrono::DateTime::UNIX_EPOCH,
        };
        self.admit(&gateway, endpoint).await
    }

    /// Admits one call of `tenant` to `endpoint` against every limit, or refuses it naming
    /// the limit, with the wait until its real boundary; `Unavailable` when the database is
    /// down and no lease is left. A refusal gives back what the earlier limits took.
    pub async fn admit(
        &self,
        tenant: &Tenant,
        endpoint: &'static str,
    ) -> Result<Admission, QuotaError> {
        let now = self.clock.now();
        let mut admission = Admission {
            tenant: tenant.id,
            endpoint,
            month: clock::month_key(now),
            taken: Vec::with_capacity(4),
            slot: None,
            gate: self.gate.clone(),
            rate_remaining: None,
        };
        for limit in self.limits(tenant) {
            if let Err(error) = self.take(limit, &mut admission, now).await {
                self.cancel(admission).await;
                if let QuotaError::Refused(refusal) = &error {
                    self.usage
                        .record_refusal(tenant.id, now.date_naive(), refusal.limit.reason());
                }
                return Err(error);
            }
        }
        Ok(admission)
    }

    /// Takes one call's worth of `limit` into `admission`.
    async fn take(
        &self,
        limit: Limit,
        admission: &mut Admission,
        now: DateTime<Utc>,
    ) -> Result<(), QuotaError> {
        let refused = |retry_after| QuotaError::Refused(Refusal { limit, retry_after });
        let monthly = |refusal| match refusal {
            MonthlyRefusal::Exhausted => refused(clock::seconds_to_month_end(now)),
            MonthlyRefusal::Unavailable(e) => QuotaError::Unavailable(e),
        };
        let mut buf = Uuid::encode_buffer();
        let subject = subject_of(admission.tenant, &mut buf);
        let month = admission.month.as_str();
        match limit {
            Limit::TenantMonthly { requests } => self
                .monthly
                .take(subject, month, requests)
                .await
                .map_err(monthly)?,
            Limit::TenantRate { per_second } => match self.rates.check(subject, per_second).await {
                Ok(RateDecision::Admitted { remaining }) => {
                    admission.rate_remaining = Some(remaining);
                }
                Ok(RateDecision::Refused { retry_after }) => return Err(refused(retry_after)),
                Err(e) => return Err(QuotaError::Unavailable(e)),
            },
            Limit::UpstreamMonthly { requests } => self
                .monthly
                .take(UPSTREAM_SUBJECT, month, requests)
                .await
                .map_err(monthly)?,
            Limit::UpstreamRate { .. } => {
                let gate = self
                    .gate
                    .as_ref()
                    .expect("an upstream rate limit has a gate");
                match gate.acquire(admission.tenant).await {
                    Ok(slot) => admission.slot = Some(slot),
                    Err(GateRefusal::Busy) => return Err(refused(1)),
                    Err(GateRefusal::Unavailable(e)) => return Err(QuotaError::Unavailable(e)),
                }
                return Ok(());
            }
        }
        admission.taken.push(limit);
        Ok(())
    }

    /// The call was forwarded (and answered, or failed after sending): it counts.
    pub fn commit(&self, mut admission: Admission) {
        if let (Some(slot), Some(gate)) = (admission.slot.take(), &self.gate) {
            let gate = gate.clone();
            // Off the answer's path: a late release only holds the slot a little longer.
            tokio::spawn(async move { gate.release(slot).await });
        }
        self.usage.record_call(
            admission.tenant,
            self.clock.now().date_naive(),
            admission.endpoint,
        );
    }

    /// The call never reached the upstream: give back everything it took.
    pub async fn cancel(&self, mut admission: Admission) {
        let mut buf = Uuid::encode_buffer();
        let subject = subject_of(admission.tenant, &mut buf);
        let month = admission.month.as_str();
        for limit in admission.taken.drain(..).rev() {
            match limit {
                Limit::TenantMonthly { .. } => self.monthly.give_back(subject, month),
                Limit::UpstreamMonthly { .. } => self.monthly.give_back(UPSTREAM_SUBJECT, month),
                Limit::TenantRate { per_second } => self.rates.give_back(subject, per_second).await,
                Limit::UpstreamRate { .. } => {}
            }
        }
        if let (Some(slot), Some(gate)) = (admission.slot.take(), &self.gate) {
            gate.release(slot).await;
        }
    }

    /// What the tenant's limits stand at, for the quota headers every `/v1` answer carries.
    /// `rate_remaining` comes from the call's admission, when it had one.
    pub fn standing(&self, tenant: &Tenant, rate_remaining: Option<u32>) -> QuotaStanding {
        let now = self.clock.now();
        let monthly = tenant.quota.monthly_requests.map(|limit| {
            let mut buf = Uuid::encode_buffer();
            let subject = subject_of(tenant.id, &mut buf);
            let standing = self
                .monthly
                .standing(subject, clock::month_key(now).as_str(), limit);
            MonthlyFigures {
                allowance: standing.allowance,
                remaining: standing.remaining,
                reset_seconds: clock::seconds_to_month_end(now),
            }
        });
        let rate = tenant
            .quota
            .requests_per_second
            .map(|per_second| RateFigures {
                per_second,
                remaining: rate_remaining.map_or(i64::from(per_second), i64::from),
            });
        QuotaStanding { monthly, rate }
    }

    /// Folds counted usage into the rollups; run every second and at shutdown.
    pub async fn flush_usage(&self) {
        self.usage.flush().await;
    }

    /// Graceful shutdown: usage written, unspent leases handed back.
    pub async fn shutdown(&self) {
        self.usage.flush().await;
        self.monthly.return_all().await;
    }
}

/// A tenant's quota subject: its id as text, written into `buf` rather than a new `String`
/// (every admission names it two or three times).
fn subject_of(tenant: Uuid, buf: &mut [u8; uuid::fmt::Urn::LENGTH]) -> &str {
    tenant.hyphenated().encode_lower(buf)
}
