//! The tenant: who the gateway serves, on which plan, within which limits. The one shape
//! of it that authentication, quotas, webhooks and the admin API all use.

use crate::domain::Invalid;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A tenant: who the gateway serves, on which plan, within which limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
// The admin API has always called this schema `TenantView`.
#[schema(as = TenantView)]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
    pub plan: Plan,
    pub quota: Quota,
    pub status: TenantStatus,
    pub created_at: DateTime<Utc>,
}

impl Tenant {
    pub fn is_suspended(&self) -> bool {
        self.status == TenantStatus::Suspended
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    Basic,
    Pro,
    Ultra,
    Mega,
    Custom,
}

impl Plan {
    const EVERY: [Plan; 5] = [
        Plan::Basic,
        Plan::Pro,
        Plan::Ultra,
        Plan::Mega,
        Plan::Custom,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Basic => "basic",
            Plan::Pro => "pro",
            Plan::Ultra => "ultra",
            Plan::Mega => "mega",
            Plan::Custom => "custom",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::EVERY.into_iter().find(|p| p.as_str() == raw)
    }

    /// The hosted API's plan table (UPSTREAM.md); `None` for `custom`.
    pub fn quota(self) -> Option<Quota> {
        let q = |m, r, s| {
            Some(Quota {
                monthly_requests: Some(m),
                requests_per_second: Some(r),
                max_sessions: s,
            })
        };
        match self {
            Plan::Basic => q(100, 10, Some(1)),
            Plan::Pro => q(1_000, 10, Some(3)),
            Plan::Ultra => q(10_000, 20, Some(10)),
            Plan::Mega => q(50_000, 25, None),
            Plan::Custom => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    Active,
    /// Every call with any of the tenant's keys answers 403.
    Suspended,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [TenantStatus::Active, TenantStatus::Suspended]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// A tenant's limits; a missing or `null` field means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub monthly_requests: Option<i64>,
    pub requests_per_second: Option<i32>,
    pub max_sessions: Option<i32>,
}

/// Bounds far beyond any plan and far from the integer edge, so sums with top-ups and
/// multiples (the per-key limiter) never overflow.
pub const MAX_MONTHLY_REQUESTS: i64 = 1_000_000_000_000;
pub const MAX_REQUESTS_PER_SECOND: i32 = 100_000;
pub const MAX_SESSIONS: i32 = 100_000;

impl Quota {
    fn check(&self) -> Result<(), Invalid> {
        let out_of = |field: &'static str, min: i64, max: i64, value: Option<i64>| match value {
            Some(v) if !(min..=max).contains(&v) => Err(Invalid::new(
                field,
                format!("quota.{field} must be between {min} and {max}"),
            )),
            _ => Ok(()),
        };
        out_of(
            "monthly_requests",
            0,
            MAX_MONTHLY_REQUESTS,
            self.monthly_requests,
        )?;
        out_of(
            "requests_per_second",
            1,
            MAX_REQUESTS_PER_SECOND.into(),
            self.requests_per_second.map(i64::from),
        )?;
        out_of(
            "max_sessions",
            0,
            MAX_SESSIONS.into(),
            self.max_sessions.map(i64::from),
        )
    }

    /// The quota a plan gives, or the custom one given; invalid when they do not fit together.
    pub fn for_plan(plan: Plan, custom: Option<Quota>) -> Result<Quota, Invalid> {
        match (plan.quota(), custom) {
            (Some(_), Some(_)) => Err(Invalid::new(
                "quota",
                format!(
                    "plan `{}` sets its own quota; use plan `custom` to give one",
                    plan.as_str()
                ),
            )),
            (Some(q), None) => Ok(q),
            (None, Some(q)) => q.check().map(|_| q),
            (None, None) => Err(Invalid::new(
                "quota",
                "plan `custom` needs a quota (null fields mean unlimited)",
            )),
        }
    }
}

/// A tenant's name: a unique slug of 1 to 63 characters of a-z, 0-9 and `-`, starting with
/// a letter or digit.
pub fn check_name(name: &str) -> Result<(), Invalid> {
    let b = name.as_bytes();
    let ok = (1..=63).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
    ok.then_some(()).ok_or_else(|| {
        Invalid::new(
            "name",
            "name must be 1 to 63 characters of a-z, 0-9 and `-`, starting with a letter or digit",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_round_trip_and_only_custom_takes_a_quota() {
        for plan in Plan::EVERY {
            assert_eq!(Plan::parse(plan.as_str()), Some(plan));
        }
        assert!(Quota::for_plan(Plan::Pro, Some(Quota::default())).is_err());
        assert!(Quota::for_plan(Plan::Custom, None).is_err());
        assert_eq!(
            Quota::for_plan(Plan::Basic, None),
            Ok(Plan::Basic.quota().unwrap())
        );
        let too_fast = Quota {
            requests_per_second: Some(0),
            ..Quota::default()
        };
        assert_eq!(
            Quota::for_plan(Plan::Custom, Some(too_fast))
                .unwrap_err()
                .field,
            "requests_per_second"
        );
    }

    #[test]
    fn names_are_slugs() {
        assert!(check_name("acme-2").is_ok());
        assert!(check_name("-acme").is_err());
        assert!(check_name("Acme").is_err());
        assert!(check_name(&"a".repeat(64)).is_err());
    }
}
