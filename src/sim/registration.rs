//! A session's webhook registrations as the seed describes them: the URL, the events, the HMAC
//! key, the retry policy and the custom headers.

use super::body::{optional_as, required};
use super::error::{SimError, SimResult};
use rand::Rng;
use serde_json::{json, Value};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Constant,
    Linear,
    Exponential,
}

impl Policy {
    const ALL: [Policy; 3] = [Policy::Constant, Policy::Linear, Policy::Exponential];

    fn as_str(self) -> &'static str {
        match self {
            Policy::Constant => "constant",
            Policy::Linear => "linear",
            Policy::Exponential => "exponential",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Retries {
    pub policy: Policy,
    /// Seconds; fractions are accepted (tests use them to keep spacing measurable but short).
    pub delay_seconds: f64,
    /// Attempts in all, the first one included.
    pub attempts: u32,
}

impl Default for Retries {
    /// The seed's example policy.
    fn default() -> Self {
        Self {
            policy: Policy::Exponential,
            delay_seconds: 2.0,
            attempts: 5,
        }
    }
}

impl Retries {
    /// The wait before retry number `n` (1 = the second attempt): constant d, d, d...;
    /// linear d, 2d, 3d...; exponential d, 2d, 4d... with about 20% jitter.
    pub fn delay_before_retry(&self, n: u32) -> Duration {
        let d = self.delay_seconds;
        let secs = match self.policy {
            Policy::Constant => d,
            Policy::Linear => d * f64::from(n),
            Policy::Exponential => {
                let jitter = rand::thread_rng().gen_range(0.8..=1.2);
                d * 2f64.powi(n.saturating_sub(1).min(30) as i32) * jitter
            }
        };
        Duration::from_secs_f64(secs.max(0.0))
    }

    /// The body's `retries`, each part defaulting to the seed's example policy. A `policy`
    /// that is not a string counts as absent.
    fn parse(body: &Value) -> SimResult<Self> {
        let default = Self::default();
        if optional_as(body, "retries", "an object", Value::as_object)?.is_none() {
            return Ok(default);
        }
        let policy = match body.pointer("/retries/policy").and_then(Value::as_str) {
            None => default.policy,
            Some(name) => Policy::ALL
                .into_iter()
                .find(|p| p.as_str() == name)
                .ok_or_else(|| {
                    SimError::bad_request(
                        "retries.policy must be one of constant, linear, exponential",
                    )
                })?,
        };
        let delay_seconds = optional_as(body, "retries.delaySeconds", "0 to 3600", |v| {
            v.as_f64().filter(|d| (0.0..=3600.0).contains(d))
        })?;
        let attempts = optional_as(body, "retries.attempts", "1 to 100", |v| {
            v.as_u64().filter(|a| (1..=100).contains(a))
        })?;
        Ok(Self {
            policy,
            delay_seconds: delay_seconds.unwrap_or(default.delay_seconds),
            attempts: attempts.map_or(default.attempts, |a| a as u32),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Registration {
    pub id: u64,
    pub url: String,
    pub events: Vec<String>,
    pub hmac_key: Option<String>,
    pub retries: Retries,
    pub custom_headers: Vec<(String, String)>,
}

impl Registration {
    /// Reads a `POST /v1/sessions/{session}/webhooks` body as the seed describes it.
    pub fn parse(id: u64, body: &Value) -> SimResult<Self> {
        Ok(Self {
            id,
            url: webhook_url(body)?,
            events: events(body)?,
            hmac_key: optional_as(body, "hmacKey", "a non-empty string", |v| {
                v.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
            })?,
            retries: Retries::parse(body)?,
            custom_headers: custom_headers(body)?,
        })
    }

    pub fn wants(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == event || e == "*")
    }

    /// The registration as answered: the HMAC key is a secret and is never shown.
    pub fn view(&self) -> Value {
        json!({
            "webhookUrl": self.url,
            "events": self.events,
            "hmacKey": self.hmac_key.as_ref().map(|_| "***"),
            "retries": {
                "policy": self.retries.policy.as_str(),
                "delaySeconds": self.retries.delay_seconds,
                "attempts": self.retries.attempts,
            },
            "customHeaders": self.custom_headers.iter()
                .map(|(name, value)| json!({"name": name, "value": value}))
                .collect::<Vec<_>>(),
        })
    }
}

fn webhook_url(body: &Value) -> SimResult<String> {
    let url = required(body, "webhookUrl")?;
    match url::Url::parse(&url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(url),
        _ => Err(SimError::bad_request(
            "webhookUrl must be an http:// or https:// URL",
        )),
    }
}

/// The events subscribed to; `message` alone when none are named.
fn events(body: &Value) -> SimResult<Vec<String>> {
    let Some(items) = optional_as(body, "events", "a non-empty array of strings", |v| {
        v.as_array().filter(|items| !items.is_empty())
    })?
    else {
        return Ok(vec!["message".to_owned()]);
    };
    items
        .iter()
        .map(|e| e.as_str().map(str::to_owned))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| SimError::bad_request("events must be an array of strings"))
}

fn custom_headers(body: &Value) -> SimResult<Vec<(String, String)>> {
    const SHAPE: &str = "an array of {name, value}";
    let Some(items) = optional_as(body, "customHeaders", SHAPE, Value::as_array)? else {
        return Ok(Vec::new());
    };
    items
        .iter()
        .map(|item| {
            let text = |key: &str| item.get(key).and_then(Value::as_str);
            let (Some(name), Some(value)) = (text("name"), text("value")) else {
                return Err(SimError::bad_request(format!(
                    "customHeaders must be {SHAPE}"
                )));
            };
            if awc::http::header::HeaderName::from_bytes(name.as_bytes()).is_err()
                || awc::http::header::HeaderValue::from_str(value).is_err()
            {
                return Err(SimError::bad_request(format!(
                    "customHeaders: `{name}` is not a valid header"
                )));
            }
            Ok((name.to_owned(), value.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_spacing_follows_the_policy() {
        let r = |policy| Retries {
            policy,
            delay_seconds: 2.0,
            attempts: 5,
        };
        let secs = |p, n| r(p).delay_before_retry(n).as_secs_f64();
        assert_eq!(
            (1..=3)
                .map(|n| secs(Policy::Constant, n))
                .collect::<Vec<_>>(),
            [2.0, 2.0, 2.0]
        );
        assert_eq!(
            (1..=3).map(|n| secs(Policy::Linear, n)).collect::<Vec<_>>(),
            [2.0, 4.0, 6.0]
        );
        for (n, base) in [(1, 2.0), (2, 4.0), (3, 8.0)] {
            let got = secs(Policy::Exponential, n);
            assert!(
                got >= base * 0.8 - 1e-9 && got <= base * 1.2 + 1e-9,
                "{n}: {got}"
            );
        }
    }
}
