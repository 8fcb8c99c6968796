//! The organisation's standing with the upstream: what the upstream's own answers said of its
//! plan, and what the gateway counted, for `GET /admin/v1/upstream`.

use crate::services::quota::upstream_gate::QueueReport;
use crate::services::quota::{clock, QuotaError, Quotas};
use actix_web::http::header::HeaderMap;
use serde::Serialize;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// What the upstream's own `X-RateLimit-Requests-*` answers say of the organisation's plan.
#[derive(Default)]
pub(super) struct UpstreamStanding {
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
    /// This replica's fair queue for the per-second budget; null when the plan has none.
    #[schema(nullable)]
    pub queue: Option<QueueReport>,
}

impl Quotas {
    /// Notes the upstream's own rate-limit figures from one of its answers.
    // The parsing of the upstream's headers belongs with the upstream client; it stays here
    // until that client hands over figures instead of its header map.
    pub fn observe_upstream(&self, status: u16, headers: &HeaderMap) {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<i64>().ok())
        };
        let standing = &self.standing;
        if let (Some(limit), Some(remaining)) = (
            number("x-ratelimit-requests-limit"),
            number("x-ratelimit-requests-remaining"),
        ) {
            standing.limit.store(limit, Ordering::Relaxed);
            standing.remaining.store(remaining, Ordering::Relaxed);
            standing.reset_secs.store(
                number("x-ratelimit-requests-reset").unwrap_or(-1),
                Ordering::Relaxed,
            );
            standing
                .seen_at_ms
                .store(self.clock.now().timestamp_millis(), Ordering::Relaxed);
        }
        if status == 429 {
            standing.throttled.fetch_add(1, Ordering::Relaxed);
        }
        if status == 401 || status == 403 {
            standing.credentials_refused.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The organisation's standing, for `GET /admin/v1/upstream`. (`_pool` is unused: the
    /// service reads over its own.)
    pub async fn upstream_report(
        &self,
        _pool: &crate::db::Db,
    ) -> Result<UpstreamReport, QuotaError> {
        let month = clock::month_key(self.clock.now());
        let month = month.as_str();
        let used = sqlx::query_scalar!(
            r#"SELECT COALESCE(sum(requests), 0)::bigint AS "used!"
                 FROM usage_daily WHERE mode = 'live' AND to_char(day, 'YYYY-MM') = $1"#,
            month
        )
        .fetch_one(&self.pool)
        .await?;
        let standing = &self.standing;
        let seen = standing.seen_at_ms.load(Ordering::Relaxed) > 0;
        let figure = |a: &AtomicI64| seen.then(|| a.load(Ordering::Relaxed)).filter(|v| *v >= 0);
        Ok(UpstreamReport {
            rps: self.gate.as_ref().map(|g| g.slots()),
            monthly: self.upstream_monthly,
            max_sessions: self.upstream_max_sessions,
            used_this_month: used,
            upstream_limit: figure(&standing.limit),
            upstream_remaining: figure(&standing.remaining),
            upstream_reset_seconds: figure(&standing.reset_secs),
            upstream_429s: standing.throttled.load(Ordering::Relaxed),
            upstream_credential_refusals: standing.credentials_refused.load(Ordering::Relaxed),
            queue: self.gate.as_ref().map(|g| g.queue_report()),
        })
    }
}
