//! Webhooks as the upstream sends them: registrations per session, the WAHA envelope, HMAC
//! signing, and delivery with the three retry policies.
//!
//! Delivery runs on one dedicated thread with its own actix System and one awc client: awc is
//! `!Send`, so it cannot live on the caller's runtime (a plain `#[tokio::test]` or the gateway's
//! multi-threaded runtime), and a thread of its own makes the simulator startable from either.
//! Jobs arrive through a channel. Each registration has one local task doing first attempts in
//! order (so `message.any` reaches a receiver before `message.ack`); retries are separate tasks
//! with their own timers. Like the upstream's, pending retries live in memory only.

use super::state::{Session, SimState};
use crate::http::error::ApiError;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use rand::Rng;
use serde_json::{json, Value};
use sha2::Sha512;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// How long one delivery attempt may take before it counts as failed.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Lowercase hex HMAC-SHA512 of the raw body: the `X-Webhook-Hmac` header.
pub fn sign(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha512>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// A ULID-shaped id (26 Crockford base32 characters, time-ordered) with a prefix.
pub fn ulid(prefix: &str) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let mut n = uuid::Uuid::now_v7().as_u128();
    let mut out = [0u8; 26];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n & 31) as usize];
        n >>= 5;
    }
    format!("{prefix}{}", std::str::from_utf8(&out).expect("ascii"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Constant,
    Linear,
    Exponential,
}

impl Policy {
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
    pub fn parse(id: u64, body: &Value) -> Result<Self, ApiError> {
        let url = match body.get("webhookUrl") {
            None | Some(Value::Null) => {
                return Err(ApiError::bad_request("webhookUrl is required"))
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                return Err(ApiError::bad_request("webhookUrl is required"))
            }
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(ApiError::bad_request("webhookUrl must be a string")),
        };
        match url::Url::parse(&url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
            _ => {
                return Err(ApiError::bad_request(
                    "webhookUrl must be an http:// or https:// URL",
                ))
            }
        }
        let events = match body.get("events") {
            None | Some(Value::Null) => vec!["message".to_owned()],
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(|e| e.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| ApiError::bad_request("events must be an array of strings"))?,
            Some(_) => {
                return Err(ApiError::bad_request(
                    "events must be a non-empty array of strings",
                ))
            }
        };
        let hmac_key = match body.get("hmacKey") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(_) => return Err(ApiError::bad_request("hmacKey must be a non-empty string")),
        };
        let retries = match body.get("retries") {
            None | Some(Value::Null) => Retries::default(),
            Some(Value::Object(r)) => {
                let default = Retries::default();
                let policy = match r.get("policy").and_then(Value::as_str) {
                    None => default.policy,
                    Some("constant") => Policy::Constant,
                    Some("linear") => Policy::Linear,
                    Some("exponential") => Policy::Exponential,
                    Some(_) => {
                        return Err(ApiError::bad_request(
                            "retries.policy must be one of constant, linear, exponential",
                        ))
                    }
                };
                let delay_seconds = match r.get("delaySeconds") {
                    None | Some(Value::Null) => default.delay_seconds,
                    Some(v) => v
                        .as_f64()
                        .filter(|d| (0.0..=3600.0).contains(d))
                        .ok_or_else(|| {
                            ApiError::bad_request("retries.delaySeconds must be 0 to 3600")
                        })?,
                };
                let attempts = match r.get("attempts") {
                    None | Some(Value::Null) => default.attempts,
                    Some(v) => v
                        .as_u64()
                        .filter(|a| (1..=100).contains(a))
                        .ok_or_else(|| ApiError::bad_request("retries.attempts must be 1 to 100"))?
                        as u32,
                };
                Retries {
                    policy,
                    delay_seconds,
                    attempts,
                }
            }
            Some(_) => return Err(ApiError::bad_request("retries must be an object")),
        };
        let mut custom_headers = Vec::new();
        match body.get("customHeaders") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for item in items {
                    let (Some(name), Some(value)) = (
                        item.get("name").and_then(Value::as_str),
                        item.get("value").and_then(Value::as_str),
                    ) else {
                        return Err(ApiError::bad_request(
                            "customHeaders must be an array of {name, value}",
                        ));
                    };
                    if awc::http::header::HeaderName::from_bytes(name.as_bytes()).is_err()
                        || awc::http::header::HeaderValue::from_str(value).is_err()
                    {
                        return Err(ApiError::bad_request(format!(
                            "customHeaders: `{name}` is not a valid header"
                        )));
                    }
                    custom_headers.push((name.to_owned(), value.to_owned()));
                }
            }
            Some(_) => {
                return Err(ApiError::bad_request(
                    "customHeaders must be an array of {name, value}",
                ))
            }
        }
        Ok(Self {
            id,
            url,
            events,
            hmac_key,
            retries,
            custom_headers,
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

/// One event on its way to one registration; the body (and so the signature) is the same
/// for every attempt.
#[derive(Debug, Clone)]
pub struct Delivery {
    registration: u64,
    url: String,
    body: Bytes,
    signature: Option<String>,
    custom_headers: Vec<(String, String)>,
    retries: Retries,
    epoch: u64,
}

impl Delivery {
    pub fn new(
        state: &SimState,
        registration: &Registration,
        session: &Session,
        event: &str,
        payload: Value,
    ) -> Self {
        let envelope = json!({
            "id": ulid("evt_"),
            "timestamp": chrono::Utc::now().timestamp_millis(),
            "event": event,
            "session": session.name,
            "metadata": session.metadata(),
            "me": session.me,
            "payload": payload,
            "engine": "WEBJS",
            "environment": {"version": "2026.7.1", "tier": "PLUS"},
        });
        let body = Bytes::from(serde_json::to_vec(&envelope).expect("JSON value"));
        Self {
            registration: registration.id,
            url: registration.url.clone(),
            signature: registration.hmac_key.as_deref().map(|k| sign(k, &body)),
            body,
            custom_headers: registration.custom_headers.clone(),
            retries: registration.retries,
            epoch: state.epoch(),
        }
    }
}

/// Starts the delivery thread; it ends when `state.close_deliveries()` drops the sender.
pub fn channel() -> (UnboundedSender<Delivery>, UnboundedReceiver<Delivery>) {
    unbounded_channel()
}

pub fn spawn_delivery_thread(
    state: Arc<SimState>,
    mut jobs: UnboundedReceiver<Delivery>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("sim-webhooks".into())
        .spawn(move || {
            actix_rt::System::new().block_on(async move {
                let client = awc::Client::builder()
                    .timeout(ATTEMPT_TIMEOUT)
                    .disable_redirects()
                    .finish();
                let mut lanes: HashMap<u64, UnboundedSender<Delivery>> = HashMap::new();
                while let Some(job) = jobs.recv().await {
                    let lane = lanes.entry(job.registration).or_insert_with(|| {
                        let (tx, rx) = unbounded_channel();
                        actix_rt::spawn(lane(client.clone(), state.clone(), rx));
                        tx
                    });
                    let _ = lane.send(job);
                }
                // Dropping the System here cancels pending retries, as a restart would.
            })
        })
}

/// First attempts for one registration, in order; a failure hands the job to a retry task.
async fn lane(client: awc::Client, state: Arc<SimState>, mut jobs: UnboundedReceiver<Delivery>) {
    while let Some(job) = jobs.recv().await {
        if job.epoch != state.epoch() {
            continue;
        }
        if attempt(&client, &job).await.is_err() && job.retries.attempts > 1 {
            actix_rt::spawn(retry(client.clone(), state.clone(), job));
        }
    }
}

async fn retry(client: awc::Client, state: Arc<SimState>, job: Delivery) {
    for n in 1..job.retries.attempts {
        actix_rt::time::sleep(job.retries.delay_before_retry(n)).await;
        if job.epoch != state.epoch() {
            return;
        }
        match attempt(&client, &job).await {
            Ok(()) => return,
            Err(e) => tracing::debug!(url = %job.url, attempt = n + 1, "sim webhook failed: {e}"),
        }
    }
}

async fn attempt(client: &awc::Client, job: &Delivery) -> Result<(), String> {
    let mut request = client
        .post(&job.url)
        .insert_header(("content-type", "application/json"))
        .insert_header(("x-webhook-request-id", ulid("req_")))
        .insert_header((
            "x-webhook-timestamp",
            chrono::Utc::now().timestamp_millis().to_string(),
        ));
    if let Some(signature) = &job.signature {
        request = request
            .insert_header(("x-webhook-hmac", signature.as_str()))
            .insert_header(("x-webhook-hmac-algorithm", "sha512"));
    }
    for (name, value) in &job.custom_headers {
        request = request.insert_header((name.as_str(), value.as_str()));
    }
    let mut response = request
        .send_body(job.body.clone())
        .await
        .map_err(|e| e.to_string())?;
    // Read the answer so the connection can go back to the pool.
    let _ = response.body().limit(1 << 20).await;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("answered {}", response.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_the_upstream_test_vector() {
        let body = br#"{"event":"message","session":"default","engine":"WEBJS"}"#;
        assert_eq!(
            sign("my-secret-key", body),
            "208f8a55dde9e05519e898b10b89bf0d0b3b0fdf11fdbf09b6b90476301b98d8\
             097c462b2b17a6ce93b6b47a136cf2e78a33a63f6752c2c1631777076153fa89"
        );
    }

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

    #[test]
    fn ulids_are_26_characters_and_unique() {
        let (a, b) = (ulid("evt_"), ulid("evt_"));
        assert_eq!(a.len(), 4 + 26);
        assert_ne!(a, b);
    }
}
