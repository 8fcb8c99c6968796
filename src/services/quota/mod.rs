//! Who gets the organisation's upstream plan: per-tenant monthly, per-second and session
//! limits, and the organisation's own budget, all enforced in PostgreSQL so they hold across
//! any number of replicas.
//!
//! Admission is all-or-nothing: limits are taken in order (tenant month, tenant rate,
//! organisation month, upstream rate) and a refusal by one gives back what the earlier ones
//! took. Calls the gateway refuses itself count nothing.

pub mod clock;
mod monthly;
mod rate;
mod report;
mod upstream_gate;
mod usage;

pub use clock::{Clock, OffsetClock, SystemClock};
pub use monthly::MonthlyStanding;
pub use report::{DayUsage, EndpointUsage, RefusalCount, TopUp, UsageReport};

use crate::config::QuotaConfig;
use crate::db::Db;
use crate::domain::Tenant;
use crate::http::error::ApiError;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use monthly::{MonthlyQuotas, MonthlyRefusal};
use rate::{RateDecision, RateLimits};
use serde::Serialize;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use upstream_gate::{GateRefusal, UpstreamGate};
use usage::UsageRecorder;
use uuid::Uuid;

/// The organisation's plan in `quota_months`.
const UPSTREAM_SUBJECT: &str = "upstream";
/// The flusher ticks every second; it purges expired idempotency records once an hour.
const IDEMPOTENCY_PURGE_EVERY_TICKS: u64 = 3600;
/// Largest block of monthly quota a replica reserves at once.
const MAX_LEASE: i64 = 100;

/// A call's claim on every limit, until it is `commit`ted (forwarded) or `cancel`led.
#[must_use = "an admission must be committed or cancelled"]
pub struct Admission {
    tenant: Uuid,
    endpoint: &'static str,
    month: String,
    took_month: bool,
    took_rate: Option<u32>,
    took_upstream_month: bool,
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

/// The quota headers [`Quotas::headers`] puts on every `/v1` answer: the monthly quota as the
/// hosted API's marketplace names it, and the per-second limit as the IETF RateLimit fields.
pub const REQUESTS_LIMIT: &str = "x-ratelimit-requests-limit";
pub const REQUESTS_REMAINING: &str = "x-ratelimit-requests-remaining";
pub const REQUESTS_RESET: &str = "x-ratelimit-requests-reset";
pub const RATE_POLICY: &str = "ratelimit-policy";
pub const RATE: &str = "ratelimit";
pub const HEADERS: [&str; 5] = [
    REQUESTS_LIMIT,
    REQUESTS_REMAINING,
    REQUESTS_RESET,
    RATE_POLICY,
    RATE,
];

/// What the upstream's own `X-RateLimit-Requests-*` answers say of the organisation's plan.
#[derive(Default)]
struct UpstreamStanding {
    limit: AtomicI64,
    remaining: AtomicI64,
    reset_secs: AtomicI64,
    seen_at_ms: AtomicI64,
    throttled: AtomicU64,
    credentials_refused: AtomicU64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UpstreamReport {
    /// The plan's per-second budget (`WAGW_UPSTREAM_RPS`); null: unlimited.
    pub rps: Option<u32>,
    /// The plan's monthly budget (`WAGW_UPSTREAM_MONTHLY`); null: unlimited.
    pub monthly: Option<i64>,
    pub max_sessions: Option<u32>,
    /// Calls forwarded this month, as counted by the gateway (all replicas).
    pub used_this_month: i64,
    /// The upstream's own latest figures, when it sent any.
    pub upstream_limit: Option<i64>,
    pub upstream_remaining: Option<i64>,
    pub upstream_reset_seconds: Option<i64>,
    /// 429 answers received from the upstream by this replica since it started.
    pub upstream_429s: u64,
    /// 401/403 answers (the organisation's credentials refused) received by this replica since
    /// it started; each reached the tenant as 502.
    pub upstream_credential_refusals: u64,
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

    /// Admits one of the gateway's own calls (admin routes, clean-up): it belongs to no
    /// tenant, so only the organisation's budget applies and no tenant's usage counts it.
    pub async fn admit_own(&self, endpoint: &'static str) -> Result<Admission, ApiError> {
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

    /// Admits one call of `tenant` to `endpoint` against every limit, or refuses it with 429
    /// (naming the limit, `Retry-After` from the real boundary) or 503 (the database is down
    /// and no lease is left).
    pub async fn admit(
        &self,
        tenant: &Tenant,
        endpoint: &'static str,
    ) -> Result<Admission, ApiError> {
        let now = self.clock.now();
        let mut admission = Admission {
            tenant: tenant.id,
            endpoint,
            month: clock::month_key(now),
            took_month: false,
            took_rate: None,
            took_upstream_month: false,
            slot: None,
            gate: self.gate.clone(),
            rate_remaining: None,
        };
        let subject = tenant.id.to_string();
        let refused = |this: &Self, reason: &'static str, error: ApiError| {
            this.usage
                .record_refusal(tenant.id, now.date_naive(), reason);
            error
        };

        if let Some(limit) = tenant.quota.monthly_requests {
            match self.monthly.take(&subject, &admission.month, limit).await {
                Ok(()) => admission.took_month = true,
                Err(MonthlyRefusal::Exhausted) => {
                    return Err(refused(
                        self,
                        "monthly_quota",
                        ApiError::too_many_requests(
                            format!("monthly quota of {limit} requests exhausted; it resets at the start of next month (UTC)"),
                            clock::seconds_to_month_end(now),
                        ),
                    ))
                }
                Err(MonthlyRefusal::Unavailable(e)) => return Err(quota_unavailable(e)),
            }
        }

        if let Some(rate) = tenant.quota.requests_per_second {
            let rate = rate.max(1) as u32;
            match self.rates.check(&subject, rate).await {
                Ok(RateDecision::Admitted { remaining }) => {
                    admission.took_rate = Some(rate);
                    admission.rate_remaining = Some(remaining);
                }
                Ok(RateDecision::Refused { retry_after }) => {
                    self.cancel(admission).await;
                    return Err(refused(
                        self,
                        "rate_limit",
                        ApiError::too_many_requests(
                            format!("rate limit of {rate} requests per second exceeded"),
                            retry_after,
                        ),
                    ));
                }
                Err(e) => {
                    self.cancel(admission).await;
                    return Err(quota_unavailable(e));
                }
            }
        }

        if let Some(limit) = self.upstream_monthly {
            match self
                .monthly
                .take(UPSTREAM_SUBJECT, &admission.month, limit)
                .await
            {
                Ok(()) => admission.took_upstream_month = true,
                Err(refusal) => {
                    self.cancel(admission).await;
                    return Err(match refusal {
                        MonthlyRefusal::Exhausted => refused(
                            self,
                            "upstream_monthly",
                            ApiError::too_many_requests(
                                "the organisation's monthly upstream budget is exhausted",
                                clock::seconds_to_month_end(now),
                            ),
                        ),
                        MonthlyRefusal::Unavailable(e) => quota_unavailable(e),
                    });
                }
            }
        }

        if let Some(gate) = &self.gate {
            match gate.acquire(tenant.id).await {
                Ok(slot) => admission.slot = Some(slot),
                Err(refusal) => {
                    self.cancel(admission).await;
                    return Err(match refusal {
                    GateRefusal::Busy => refused(
                        self,
                        "upstream_rate",
                        ApiError::too_many_requests(
                            format!(
                                "the organisation's upstream budget of {} requests per second is fully used; retry shortly",
                                gate.slots()
                            ),
                            1,
                        ),
                    ),
                    GateRefusal::Unavailable(e) => quota_unavailable(e),
                });
                }
            }
        }
        Ok(admission)
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
        let subject = admission.tenant.to_string();
        if admission.took_month {
            self.monthly.give_back(&subject, &admission.month);
        }
        if admission.took_upstream_month {
            self.monthly.give_back(UPSTREAM_SUBJECT, &admission.month);
        }
        if let Some(rate) = admission.took_rate {
            self.rates.give_back(&subject, rate).await;
        }
        if let (Some(slot), Some(gate)) = (admission.slot.take(), &self.gate) {
            gate.release(slot).await;
        }
    }

    /// The quota headers every `/v1` answer carries: the monthly quota as the hosted API's
    /// marketplace names it, and the per-second limit as the IETF RateLimit fields.
    pub fn headers(&self, tenant: &Tenant, rate_remaining: Option<u32>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let mut put = |name: &'static str, value: String| {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        };
        let now = self.clock.now();
        if let Some(limit) = tenant.quota.monthly_requests {
            let standing =
                self.monthly
                    .standing(&tenant.id.to_string(), &clock::month_key(now), limit);
            put("x-ratelimit-requests-limit", standing.allowance.to_string());
            put(
                "x-ratelimit-requests-remaining",
                standing.remaining.to_string(),
            );
            put(
                "x-ratelimit-requests-reset",
                clock::seconds_to_month_end(now).to_string(),
            );
        }
        if let Some(rate) = tenant.quota.requests_per_second {
            put("ratelimit-policy", format!("{rate};w=1"));
            let remaining = rate_remaining.map_or(rate.to_string(), |r| r.to_string());
            put(
                "ratelimit",
                format!("limit={rate}, remaining={remaining}, reset=1"),
            );
        }
        headers
    }

    /// Notes the upstream's own rate-limit figures from one of its answers.
    pub fn observe_upstream(&self, status: u16, headers: &HeaderMap) {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<i64>().ok())
        };
        if let (Some(limit), Some(remaining)) = (
            number("x-ratelimit-requests-limit"),
            number("x-ratelimit-requests-remaining"),
        ) {
            self.standing.limit.store(limit, Ordering::Relaxed);
            self.standing.remaining.store(remaining, Ordering::Relaxed);
            self.standing.reset_secs.store(
                number("x-ratelimit-requests-reset").unwrap_or(-1),
                Ordering::Relaxed,
            );
            self.standing
                .seen_at_ms
                .store(self.clock.now().timestamp_millis(), Ordering::Relaxed);
        }
        if status == 429 {
            self.standing.throttled.fetch_add(1, Ordering::Relaxed);
        }
        if status == 401 || status == 403 {
            self.standing
                .credentials_refused
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The organisation's standing, for `GET /admin/v1/upstream`.
    pub async fn upstream_report(&self, pool: &Db) -> Result<UpstreamReport, ApiError> {
        let month = clock::month_key(self.clock.now());
        let used: i64 = sqlx::query_scalar("SELECT COALESCE(sum(requests), 0)::bigint FROM usage_daily WHERE to_char(day, 'YYYY-MM') = $1")
            .bind(&month)
            .fetch_one(pool)
            .await?;
        let seen = self.standing.seen_at_ms.load(Ordering::Relaxed) > 0;
        let figure = |a: &AtomicI64| seen.then(|| a.load(Ordering::Relaxed)).filter(|v| *v >= 0);
        Ok(UpstreamReport {
            rps: self.gate.as_ref().map(|g| g.slots()),
            monthly: self.upstream_monthly,
            max_sessions: self.upstream_max_sessions,
            used_this_month: used,
            upstream_limit: figure(&self.standing.limit),
            upstream_remaining: figure(&self.standing.remaining),
            upstream_reset_seconds: figure(&self.standing.reset_secs),
            upstream_429s: self.standing.throttled.load(Ordering::Relaxed),
            upstream_credential_refusals: self.standing.credentials_refused.load(Ordering::Relaxed),
        })
    }

    /// Folds counted usage into the rollups; run every second and at shutdown.
    pub async fn flush_usage(&self) {
        self.usage.flush().await;
    }

    /// Graceful shutdown: usage written, unspent leases handed back.
    pub async fn shutdown(&self) {
        self.usage.flush_on(&self.pool).await;
        self.monthly.return_all(&self.pool).await;
    }

    /// Starts the once-a-second usage flush.
    pub fn spawn_flusher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let quotas = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut ticks: u64 = 0;
            loop {
                tick.tick().await;
                let Some(q) = quotas.upgrade() else {
                    return;
                };
                q.flush_usage().await;
                // Hourly (and once at start): idempotency records past their 24 h window.
                if ticks % IDEMPOTENCY_PURGE_EVERY_TICKS == 0 {
                    crate::services::idempotency::purge_expired(&q.pool).await;
                }
                ticks += 1;
            }
        })
    }
}

fn quota_unavailable(e: sqlx::Error) -> ApiError {
    ApiError::service_unavailable(
        "quota cannot be checked right now (the database is unreachable); retry shortly",
    )
    .with_cause(e)
}
