//! The limits a call is admitted against, and what a refusal says. No HTTP here: the HTTP
//! layer words refusals for the caller (`http::error`).

use crate::domain::Invalid;
use crate::store::StoreError;

/// One limit, with the figure it was counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The tenant's monthly requests (its quota plus top-ups).
    TenantMonthly { requests: i64 },
    /// The tenant's requests per second.
    TenantRate { per_second: u32 },
    /// The organisation's monthly upstream budget.
    UpstreamMonthly { requests: i64 },
    /// The organisation's upstream budget per second, shared by every tenant.
    UpstreamRate { per_second: u32 },
}

impl Limit {
    /// The reason refusals are counted under in `refusals_daily`.
    pub fn reason(&self) -> &'static str {
        match self {
            Limit::TenantMonthly { .. } => "monthly_quota",
            Limit::TenantRate { .. } => "rate_limit",
            Limit::UpstreamMonthly { .. } => "upstream_monthly",
            Limit::UpstreamRate { .. } => "upstream_rate",
        }
    }
}

/// A call refused by `limit`; it may be tried again after `retry_after` whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub limit: Limit,
    pub retry_after: u64,
}

/// What the quota service can fail with.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error("refused by the {} limit", .0.limit.reason())]
    Refused(Refusal),
    /// A limit could not be checked: the database is away and no lease is left.
    #[error("quota cannot be checked: the database is unreachable")]
    Unavailable(#[source] sqlx::Error),
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for QuotaError {
    fn from(err: sqlx::Error) -> Self {
        Self::Store(err.into())
    }
}
