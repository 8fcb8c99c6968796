//! Sending webhook deliveries, with the three retry policies, and counting those not done yet.
//!
//! Delivery runs on one dedicated thread with its own actix System and one awc client: awc is
//! `!Send`, so it cannot live on the caller's runtime (a plain `#[tokio::test]` or the gateway's
//! multi-threaded runtime), and a thread of its own makes the simulator startable from either.
//! Jobs arrive through a channel. Each registration has one local task doing first attempts in
//! order (so `message.any` reaches a receiver before `message.ack`); retries are separate tasks
//! with their own timers. Like the upstream's, pending retries live in memory only.

use super::registration::{Registration, Retries};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::Sha512;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
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
    /// The outbox epoch it was made in: a reset since then drops it.
    epoch: u64,
}

impl Delivery {
    pub fn new(epoch: u64, registration: &Registration, body: Bytes) -> Self {
        Self {
            registration: registration.id,
            url: registration.url.clone(),
            signature: registration.hmac_key.as_deref().map(|k| sign(k, &body)),
            body,
            custom_headers: registration.custom_headers.clone(),
            retries: registration.retries,
            epoch,
        }
    }
}

/// Where deliveries are handed to the delivery thread, and the count of those not done yet
/// (`/_sim/deliveries`), per epoch.
pub struct Outbox {
    queue: Mutex<Option<UnboundedSender<Delivery>>>,
    ledger: Mutex<Ledger>,
}

/// Bumping `epoch` drops every delivery made before; `pending` counts the current epoch's
/// deliveries that are queued, being attempted or waiting for a retry.
#[derive(Default)]
struct Ledger {
    epoch: u64,
    pending: usize,
}

impl Outbox {
    /// The outbox and its delivery thread, which ends when `close` drops the queue.
    pub fn start() -> std::io::Result<(Arc<Self>, std::thread::JoinHandle<()>)> {
        let (queue, jobs) = unbounded_channel();
        let outbox = Arc::new(Self {
            queue: Mutex::new(Some(queue)),
            ledger: Mutex::new(Ledger::default()),
        });
        let thread = spawn_delivery_thread(outbox.clone(), jobs)?;
        Ok((outbox, thread))
    }

    pub fn epoch(&self) -> u64 {
        self.ledger.lock().unwrap().epoch
    }

    /// Deliveries of the current epoch not delivered yet, and not given up on.
    pub fn pending(&self) -> usize {
        self.ledger.lock().unwrap().pending
    }

    pub fn submit(&self, delivery: Delivery) {
        let mut ledger = self.ledger.lock().unwrap();
        if delivery.epoch != ledger.epoch {
            return;
        }
        let queue = self.queue.lock().unwrap();
        if queue.as_ref().is_some_and(|q| q.send(delivery).is_ok()) {
            ledger.pending += 1;
        }
    }

    /// Drops every pending delivery: they are not attempted again.
    pub fn forget_pending(&self) {
        let mut ledger = self.ledger.lock().unwrap();
        ledger.epoch += 1;
        ledger.pending = 0;
    }

    /// Closes the queue: the delivery thread ends and pending retries are lost.
    pub fn close(&self) {
        self.queue.lock().unwrap().take();
    }

    fn is_current(&self, job: &Delivery) -> bool {
        job.epoch == self.epoch()
    }

    /// `job` was delivered or given up on.
    fn done(&self, job: &Delivery) {
        let mut ledger = self.ledger.lock().unwrap();
        if job.epoch == ledger.epoch {
            ledger.pending -= 1;
        }
    }
}

fn spawn_delivery_thread(
    outbox: Arc<Outbox>,
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
                        actix_rt::spawn(lane(client.clone(), outbox.clone(), rx));
                        tx
                    });
                    let _ = lane.send(job);
                }
                // Dropping the System here cancels pending retries, as a restart would.
            })
        })
}

/// First attempts for one registration, in order; a failure hands the job to a retry task.
async fn lane(client: awc::Client, outbox: Arc<Outbox>, mut jobs: UnboundedReceiver<Delivery>) {
    while let Some(job) = jobs.recv().await {
        if !outbox.is_current(&job) {
            continue;
        }
        if attempt(&client, &job).await.is_err() && job.retries.attempts > 1 {
            actix_rt::spawn(retry(client.clone(), outbox.clone(), job));
        } else {
            outbox.done(&job);
        }
    }
}

async fn retry(client: awc::Client, outbox: Arc<Outbox>, job: Delivery) {
    for n in 1..job.retries.attempts {
        actix_rt::time::sleep(job.retries.delay_before_retry(n)).await;
        if !outbox.is_current(&job) {
            return;
        }
        match attempt(&client, &job).await {
            Ok(()) => break,
            Err(e) => tracing::debug!(url = %job.url, attempt = n + 1, "sim webhook failed: {e}"),
        }
    }
    outbox.done(&job);
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
    fn ulids_are_26_characters_and_unique() {
        let (a, b) = (ulid("evt_"), ulid("evt_"));
        assert_eq!(a.len(), 4 + 26);
        assert_ne!(a, b);
    }
}
