//! A webhook subscription's parts: its retry policy (`retries` in the seed) and the schedule
//! it gives, its custom headers, and the states a delivery goes through.

use crate::domain::webhook_signing::Signing;
use crate::domain::Invalid;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use url::Url;

/// Webhooks one session may have; each event is delivered once per webhook.
pub const MAX_PER_SESSION: i64 = 20;
/// Longest wait between two attempts, whatever the policy says, so a long exponential series
/// cannot park a delivery for months.
const MAX_DELAY: Duration = Duration::from_secs(24 * 3600);
/// Bounds of `retries.delaySeconds` (from 0) and `retries.attempts` (from 1).
pub const MAX_DELAY_SECONDS: i64 = 3600;
pub const MAX_ATTEMPTS: i64 = 20;
/// Exponential delays are spread by up to this fraction either way (the upstream's ~20%).
const JITTER: f64 = 0.2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Backoff {
    Constant,
    Linear,
    Exponential,
}

impl Backoff {
    pub fn as_str(self) -> &'static str {
        match self {
            Backoff::Constant => "constant",
            Backoff::Linear => "linear",
            Backoff::Exponential => "exponential",
        }
    }
}

impl std::str::FromStr for Backoff {
    type Err = Invalid;

    fn from_str(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "constant" => Ok(Backoff::Constant),
            "linear" => Ok(Backoff::Linear),
            "exponential" => Ok(Backoff::Exponential),
            _ => Err(Invalid::new(
                "retries.policy",
                "retries.policy must be constant, linear or exponential",
            )),
        }
    }
}

/// `{policy, delaySeconds, attempts}`; `attempts` counts every attempt, the first included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    pub policy: Backoff,
    pub delay_seconds: i32,
    pub attempts: i32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            policy: Backoff::Exponential,
            delay_seconds: 2,
            attempts: 5,
        }
    }
}

impl RetryPolicy {
    /// From the request's `retries` object (already type-checked against the route table);
    /// missing fields take the defaults.
    pub fn from_request(raw: Option<&serde_json::Value>) -> Result<Self, Invalid> {
        let mut policy = Self::default();
        let Some(raw) = raw else {
            return Ok(policy);
        };
        if let Some(name) = raw.get("policy").and_then(|v| v.as_str()) {
            policy.policy = name.parse()?;
        }
        if let Some(delay) = raw.get("delaySeconds").and_then(|v| v.as_i64()) {
            if !(0..=MAX_DELAY_SECONDS).contains(&delay) {
                return Err(Invalid::new(
                    "retries.delaySeconds",
                    format!("retries.delaySeconds must be between 0 and {MAX_DELAY_SECONDS}"),
                ));
            }
            policy.delay_seconds = delay as i32;
        }
        if let Some(attempts) = raw.get("attempts").and_then(|v| v.as_i64()) {
            if !(1..=MAX_ATTEMPTS).contains(&attempts) {
                return Err(Invalid::new(
                    "retries.attempts",
                    format!("retries.attempts must be between 1 and {MAX_ATTEMPTS}"),
                ));
            }
            policy.attempts = attempts as i32;
        }
        Ok(policy)
    }

    /// The wait before the next attempt after `failed` attempts have failed, or `None` when
    /// they were all the policy allows.
    pub fn delay_after(&self, failed: i32) -> Option<Duration> {
        if failed >= self.attempts || failed < 1 {
            return None;
        }
        let base = f64::from(self.delay_seconds.max(0));
        let secs = match self.policy {
            Backoff::Constant => base,
            Backoff::Linear => base * f64::from(failed),
            Backoff::Exponential => {
                let raw = base * 2f64.powi(failed - 1);
                raw * (1.0 + rand::thread_rng().gen_range(-JITTER..=JITTER))
            }
        };
        Some(Duration::from_secs_f64(secs.min(MAX_DELAY.as_secs_f64())))
    }
}

/// A header the tenant asked to be sent with every delivery (stored as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct CustomHeader {
    pub name: String,
    pub value: String,
}

/// A subscription as registered, checked: what the store keeps.
#[derive(Debug, Clone)]
pub struct NewSubscription {
    pub url: Url,
    pub events: Vec<String>,
    pub signing: Signing,
    pub retries: RetryPolicy,
    pub custom_headers: Vec<CustomHeader>,
}

/// Where a delivery is: still being attempted, or done one way or the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }
}

impl std::str::FromStr for DeliveryStatus {
    type Err = Invalid;

    fn from_str(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "pending" => Ok(DeliveryStatus::Pending),
            "delivered" => Ok(DeliveryStatus::Delivered),
            "failed" => Ok(DeliveryStatus::Failed),
            _ => Err(Invalid::new(
                "status",
                "status must be pending, delivered or failed",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secs(p: &RetryPolicy, failed: i32) -> Option<f64> {
        p.delay_after(failed).map(|d| d.as_secs_f64())
    }

    #[test]
    fn constant_and_linear_follow_the_upstream() {
        let c = RetryPolicy {
            policy: Backoff::Constant,
            delay_seconds: 2,
            attempts: 4,
        };
        assert_eq!(
            (1..=4).map(|n| secs(&c, n)).collect::<Vec<_>>(),
            vec![Some(2.0), Some(2.0), Some(2.0), None]
        );
        let l = RetryPolicy {
            policy: Backoff::Linear,
            ..c
        };
        assert_eq!(
            (1..=4).map(|n| secs(&l, n)).collect::<Vec<_>>(),
            vec![Some(2.0), Some(4.0), Some(6.0), None]
        );
    }

    #[test]
    fn exponential_doubles_with_bounded_jitter() {
        let p = RetryPolicy::default();
        for _ in 0..200 {
            for (failed, nominal) in [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0)] {
                let s = secs(&p, failed).unwrap();
                assert!(
                    (nominal * 0.8..=nominal * 1.2).contains(&s),
                    "{failed}: {s}"
                );
            }
            assert_eq!(secs(&p, 5), None, "5 attempts in all");
        }
    }

    #[test]
    fn parsing_fills_defaults_and_bounds_values() {
        assert_eq!(
            RetryPolicy::from_request(None).unwrap(),
            RetryPolicy::default()
        );
        let p = RetryPolicy::from_request(Some(&json!({"policy": "linear"}))).unwrap();
        assert_eq!(p.policy, Backoff::Linear);
        assert_eq!((p.delay_seconds, p.attempts), (2, 5));
        assert!(RetryPolicy::from_request(Some(&json!({"attempts": 0}))).is_err());
        assert!(RetryPolicy::from_request(Some(&json!({"delaySeconds": -1}))).is_err());
        assert!(RetryPolicy::from_request(Some(&json!({"policy": "fibonacci"}))).is_err());
    }

    #[test]
    fn custom_headers_round_trip_as_stored() {
        let h: Vec<CustomHeader> =
            serde_json::from_str(r#"[{"name":"X-Token","value":"abc"}]"#).unwrap();
        assert_eq!(h[0].name, "X-Token");
        assert_eq!(h[0].value, "abc");
    }

    #[test]
    fn statuses_read_back_as_written() {
        for s in [
            DeliveryStatus::Pending,
            DeliveryStatus::Delivered,
            DeliveryStatus::Failed,
        ] {
            assert_eq!(s.as_str().parse::<DeliveryStatus>(), Ok(s));
        }
        assert!("done".parse::<DeliveryStatus>().is_err());
    }
}
