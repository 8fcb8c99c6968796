//! Usage reports, read from the rollups (never by scanning a log), and the admin's
//! corrections to a tenant's month.

use crate::domain::{Invalid, Tenant};
use crate::services::quota::{clock, QuotaError, Quotas};
pub use crate::store::pacing::SessionPacing;
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageReport {
    /// `YYYY-MM`, UTC.
    #[schema(example = "2026-11")]
    pub month: String,
    /// The month's allowance: the quota plus admin top-ups; null: unlimited.
    pub limit: Option<i64>,
    /// Calls forwarded this month.
    pub used: i64,
    /// What is left of the allowance; null: unlimited.
    pub remaining: Option<i64>,
    /// Seconds until the month resets.
    pub reset_seconds: u64,
    pub days: Vec<DayUsage>,
    pub endpoints: Vec<EndpointUsage>,
    pub refusals: Vec<RefusalCount>,
    /// Calls made with test keys this month: served by the simulator, not in `used`.
    pub test: TestUsage,
    /// This month's paced sends per session: how many waited, how long, how many were
    /// refused for waiting too long.
    pub pacing: Vec<SessionPacing>,
}

/// A month's calls of test keys, apart from the month's usage (they spend none of it).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TestUsage {
    pub requests: i64,
    pub endpoints: Vec<EndpointUsage>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DayUsage {
    pub day: NaiveDate,
    pub requests: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointUsage {
    /// The operation id of the endpoint, e.g. `sendText`.
    pub endpoint: String,
    pub requests: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RefusalCount {
    /// `monthly_quota`, `rate_limit`, `upstream_monthly`, `upstream_rate` or `pacing`.
    pub reason: String,
    pub refusals: i64,
}

/// One rollup row of the month: a day's calls of one endpoint, live or by test keys.
struct CallRow {
    test: bool,
    day: NaiveDate,
    endpoint: String,
    requests: i64,
}

/// Sums `requests` by `key`, in the key's order.
fn summed<K: Ord>(rows: &[&CallRow], key: impl Fn(&CallRow) -> K) -> Vec<(K, i64)> {
    let mut sums = std::collections::BTreeMap::<K, i64>::new();
    for row in rows {
        *sums.entry(key(row)).or_default() += row.requests;
    }
    sums.into_iter().collect()
}

/// Calls per endpoint, most called first (then by name).
fn by_endpoint(rows: &[&CallRow]) -> Vec<EndpointUsage> {
    let mut sums = summed(rows, |r| r.endpoint.clone());
    sums.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    sums.into_iter()
        .map(|(endpoint, requests)| EndpointUsage { endpoint, requests })
        .collect()
}

/// The largest single top-up: far beyond any plan, and far from overflowing the month's sum.
const MAX_TOP_UP: i64 = 1_000_000_000;
/// A month's top-ups together stay within this much beyond what was used (a reset makes
/// the bonus what was used): far beyond any real correction, far from overflowing.
const MAX_UNUSED_TOP_UPS: i64 = 10 * MAX_TOP_UP;

/// An admin's correction to the current month.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUp {
    /// Extra requests granted for this month (1 to 1,000,000,000 per top-up).
    #[schema(example = 500, minimum = 1, maximum = 1000000000)]
    pub requests: i64,
}

impl Quotas {
    /// This month's usage of `tenant`, against its monthly quota.
    pub async fn usage_report(&self, tenant: &Tenant) -> Result<UsageReport, QuotaError> {
        let limit = tenant.quota.monthly_requests;
        let tenant = tenant.id;
        // What this replica counted in the last second is included.
        self.flush_usage().await;
        let now = self.clock.now();
        let month = clock::month_key(now).as_str().to_owned();
        let first_day = now
            .date_naive()
            .with_day(1)
            .expect("every month has a first day");
        let next_month = clock::next_month_start(now).date_naive();
        let pool = &self.pool;
        // The month's rows, live and test, in one read (at most days x endpoints x 2 rows).
        let rows = sqlx::query_as!(
            CallRow,
            r#"SELECT mode = 'test' AS "test!", day, endpoint, requests FROM usage_daily
                WHERE tenant_id = $1 AND day >= $2 AND day < $3"#,
            tenant,
            first_day,
            next_month
        )
        .fetch_all(pool)
        .await?;
        let (test_rows, live_rows): (Vec<_>, Vec<_>) = rows.iter().partition(|r| r.test);
        let days: Vec<DayUsage> = summed(&live_rows, |r| r.day)
            .into_iter()
            .map(|(day, requests)| DayUsage { day, requests })
            .collect();
        let refusals = sqlx::query_as!(
            RefusalCount,
            r#"SELECT reason, sum(refusals)::bigint AS "refusals!" FROM refusals_daily
                WHERE tenant_id = $1 AND day >= $2 AND day < $3 GROUP BY reason ORDER BY reason"#,
            tenant,
            first_day,
            next_month
        )
        .fetch_all(pool)
        .await?;
        let pacing = crate::store::pacing::usage(pool, tenant, first_day, next_month).await?;
        let endpoints = by_endpoint(&live_rows);
        let test_endpoints = by_endpoint(&test_rows);
        let test = TestUsage {
            requests: test_endpoints.iter().map(|e| e.requests).sum(),
            endpoints: test_endpoints,
        };
        let used = days.iter().map(|d| d.requests).sum();
        let (limit, remaining) = match limit {
            Some(limit) => {
                let subject = tenant.to_string();
                let month_row = sqlx::query!(
                    "SELECT leased, bonus FROM quota_months WHERE subject = $1 AND month = $2",
                    subject,
                    month
                )
                .fetch_optional(pool)
                .await?;
                let (leased, bonus) = month_row.map_or((0, 0), |r| (r.leased, r.bonus));
                let held = self.monthly.held(&subject, &month);
                let allowance = limit.saturating_add(bonus);
                (
                    Some(allowance),
                    Some(allowance.saturating_sub(leased).saturating_add(held).max(0)),
                )
            }
            None => (None, None),
        };
        Ok(UsageReport {
            month,
            limit,
            used,
            remaining,
            reset_seconds: clock::seconds_to_month_end(now),
            days,
            endpoints,
            refusals,
            test,
            pacing,
        })
    }

    /// Grants `requests` more to the tenant's current month.
    pub async fn top_up(
        &self,
        conn: &mut sqlx::PgConnection,
        tenant: Uuid,
        requests: i64,
    ) -> Result<(), QuotaError> {
        if !(1..=MAX_TOP_UP).contains(&requests) {
            return Err(Invalid::new(
                "requests",
                format!("requests must be between 1 and {MAX_TOP_UP}"),
            )
            .into());
        }
        let granted = sqlx::query!(
            "INSERT INTO quota_months (subject, month, bonus) VALUES ($1, $2, $3)
             ON CONFLICT (subject, month) DO UPDATE SET bonus = quota_months.bonus + EXCLUDED.bonus
              WHERE quota_months.bonus + EXCLUDED.bonus <= GREATEST(quota_months.leased, 0) + $4",
            tenant.to_string(),
            clock::month_key(self.clock.now()).as_str().to_owned(),
            requests,
            MAX_UNUSED_TOP_UPS
        )
        .execute(conn)
        .await?;
        if granted.rows_affected() == 0 {
            return Err(Invalid::new(
                "requests",
                format!(
                    "this month's top-ups would pass {MAX_UNUSED_TOP_UPS} requests beyond what was used"
                ),
            )
            .into());
        }
        Ok(())
    }

    /// Gives the tenant its whole quota back for the rest of the month. What replicas hold
    /// unspent at that moment stays theirs to spend (at most one lease each).
    pub async fn reset_month(
        &self,
        conn: &mut sqlx::PgConnection,
        tenant: Uuid,
    ) -> Result<(), QuotaError> {
        sqlx::query!(
            "INSERT INTO quota_months (subject, month) VALUES ($1, $2)
             ON CONFLICT (subject, month) DO UPDATE SET bonus = quota_months.leased",
            tenant.to_string(),
            clock::month_key(self.clock.now()).as_str().to_owned()
        )
        .execute(conn)
        .await?;
        Ok(())
    }
}
