//! Delivery workers: claim due rows from the outbox, POST them to the tenants' receivers, and
//! record the outcome (with the next attempt scheduled in the row, so retries survive
//! restarts).
//!
//! awc is `!Send`, so the workers run on their own thread with its own actix (current-thread)
//! runtime: one dispatcher claims rows and spawns one local task per attempt, up to
//! `CONCURRENCY` at once. That thread also runs the registration reconciler and the retries
//! of upstream session deletions (both call the upstream with awc); the outbox's upkeep
//! (retention, bounds) runs among the application's jobs (`upkeep`).
//!
//! Isolation (security review M5): the claim is fair (`outbox::claim`: at most
//! [`IN_FLIGHT`] attempts per endpoint and per tenant across replicas, round-robin across
//! tenants), a retry waits at least [`MIN_RETRY_DELAY`], and resolving and sending share one
//! deadline inside the claim's lease, so one slow or dead endpoint holds a bounded share of
//! the slots and never delays another tenant's deliveries, nor another endpoint's.

use crate::config::{UpstreamConfig, WebhookConfig};
use crate::db::Db;
use crate::metrics::Metrics;
use crate::services::quota::Quotas;
use crate::services::upstream::{UpstreamClient, Upstreams};
use crate::services::webhooks::listing::SubscriptionLists;
use crate::services::webhooks::outcomes::Outcomes;
use crate::services::webhooks::registration::{self, Registrar, SessionRef};
use crate::services::webhooks::relay::Relay;
use crate::services::webhooks::signing::{
    self, ALGORITHM, ALGORITHM_HEADER, HMAC_HEADER, REQUEST_ID_HEADER, STANDARD_ID_HEADER,
    STANDARD_SIGNATURE_HEADER, STANDARD_TIMESTAMP_HEADER, TIMESTAMP_HEADER,
};
use crate::services::webhooks::ssrf::{self, TargetRefused, Why};
use crate::services::webhooks::{health, retry_after};
use crate::store::webhooks::outbox::{self, Claimed, Completion, Finished, InFlight, Keys};
use actix_web::http::StatusCode;
use actix_web::web;
use awc::error::{ConnectError, SendRequestError};
use secrecy::SecretString;
use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify, Semaphore};
use url::Url;

/// Attempts in flight at once on one replica. An attempt is a small local task, so this is
/// generous: with [`IN_FLIGHT`] no tenant holds more than an eighth of it.
const CONCURRENCY: usize = 512;
/// Attempts in flight at once to one endpoint, and to all of one tenant's, across replicas.
/// One endpoint's throughput is its cap over an attempt's round trip (answer and record): at
/// 8 a fast local receiver took 1,355 events/s in `bench/webhooks.sh`, at 32 2,353.
pub const IN_FLIGHT: InFlight = InFlight {
    per_endpoint: 32,
    per_tenant: 64,
};
const _: () = assert!(IN_FLIGHT.per_tenant as usize * 8 <= CONCURRENCY);
const _: () = assert!(IN_FLIGHT.per_endpoint <= IN_FLIGHT.per_tenant);
/// The shortest wait before a retry, whatever the policy (`delaySeconds: 0`) or the receiver's
/// `Retry-After` say.
pub const MIN_RETRY_DELAY: Duration = retry_after::MIN;
/// How long a receiver has to answer one attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A claimed row is someone's for this long; past it, another worker may take it again.
const LEASE: Duration = Duration::from_secs(15);
/// The whole of one attempt (resolving the name, connecting, sending, reading the answer)
/// ends by then: inside the lease with time to record the outcome, so a slow DNS answer can
/// never let the row be claimed again while this attempt still runs.
const ATTEMPT_DEADLINE: Duration = Duration::from_secs(12);
const _: () = assert!(ATTEMPT_DEADLINE.as_secs() + 3 <= LEASE.as_secs());
/// The longest the dispatcher sleeps without looking (NOTIFY usually wakes it sooner).
const IDLE_POLL: Duration = Duration::from_millis(500);
const _: () = assert!(IDLE_POLL.as_millis() < MIN_RETRY_DELAY.as_millis());
/// How often the outbox depth gauge is read at least, however busy the dispatcher.
const DEPTH_EVERY: Duration = Duration::from_secs(1);
const RECONCILE_EVERY: Duration = Duration::from_secs(3);
/// How often due upstream session deletions are looked for (each row has its own backoff).
const DELETION_RETRY_EVERY: Duration = Duration::from_secs(2);
/// How long shutdown waits for attempts in flight; the rest fall due again after the lease.
const DRAIN: Duration = Duration::from_secs(5);
/// A receiver's answer is read (so the connection can be reused) up to this much, then dropped.
const MAX_ANSWER: usize = 64 * 1024;

/// What the workers need, all of it `Send`, handed to their thread.
pub struct WorkerSettings {
    pub db: Db,
    pub metrics: web::Data<Metrics>,
    pub webhooks: WebhookConfig,
    pub upstream: UpstreamConfig,
    pub upstream_key: SecretString,
    /// The replica's simulator, which test sessions are registered with.
    pub test_upstream: Arc<crate::services::upstream::TestUpstream>,
    pub quotas: Arc<Quotas>,
    /// The ingress URL registrations name, and the wake-up this replica's ingress signals
    /// when it stored deliveries.
    pub relay: Arc<Relay>,
    /// Woken by the replica's one change feed (`db::ChangeFeed`) for every outbox
    /// notification from any replica.
    pub outbox_changed: Arc<Notify>,
}

/// The running workers; `stop` ends them.
pub struct DeliveryWorkers {
    stop: watch::Sender<bool>,
    thread: std::thread::JoinHandle<()>,
}

impl DeliveryWorkers {
    pub fn start(settings: WorkerSettings) -> anyhow::Result<Self> {
        let (stop, stopped) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("wagw-webhooks".into())
            .spawn(move || {
                actix_rt::System::new().block_on(run(settings, stopped));
            })?;
        Ok(Self { stop, thread })
    }

    /// Stops claiming, lets attempts in flight finish (bounded), and waits for the thread.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let thread = self.thread;
        if tokio::task::spawn_blocking(move || thread.join())
            .await
            .is_err()
        {
            tracing::error!("the webhook delivery thread panicked");
        }
    }
}

struct Worker {
    pool: Db,
    http: awc::Client,
    metrics: web::Data<Metrics>,
    allow_private: bool,
    /// An endpoint failing without a success this long is disabled.
    disable_after: Duration,
    /// Where attempts' outcomes are recorded, together.
    outcomes: Outcomes,
    /// The tenants' subscription lists, which show an endpoint's health.
    subscriptions: SubscriptionLists,
    /// When the outbox's depth was last read.
    depth_read: Cell<Instant>,
    /// Signalled when an attempt ends, so the dispatcher can claim again.
    wake: Notify,
    slots: Arc<Semaphore>,
}

async fn run(settings: WorkerSettings, mut stop: watch::Receiver<bool>) {
    let pool = settings.db.clone();
    let worker = Rc::new(Worker {
        pool: pool.clone(),
        http: delivery_client(),
        metrics: settings.metrics.clone(),
        allow_private: settings.webhooks.allow_private,
        disable_after: settings.webhooks.disable_after,
        outcomes: Outcomes::start(
            pool.clone(),
            CONCURRENCY,
            settings.webhooks.disable_after,
            settings.relay.subscriptions.clone(),
        ),
        subscriptions: settings.relay.subscriptions.clone(),
        depth_read: Cell::new(
            Instant::now()
                .checked_sub(DEPTH_EVERY)
                .unwrap_or_else(Instant::now),
        ),
        wake: Notify::new(),
        slots: Arc::new(Semaphore::new(CONCURRENCY)),
    });
    // This thread is where the gateway's background calls to the upstream run (awc clients
    // need a thread of their own): webhook registrations and session deletions, on one client.
    let upstream = Rc::new(UpstreamClient::new(
        &settings.upstream,
        &settings.upstream_key,
        settings.metrics.clone(),
    ));
    let test_upstream = Rc::new(settings.test_upstream.client(settings.metrics.clone()));
    let reconciler = actix_rt::spawn(reconcile(
        pool.clone(),
        (upstream.clone(), test_upstream),
        settings.quotas.clone(),
        settings.relay.clone(),
    ));
    let deletions = actix_rt::spawn(retry_session_deletions(
        pool.clone(),
        upstream,
        settings.quotas.clone(),
    ));
    while !*stop.borrow() {
        let dispatched = worker.dispatch().await;
        if dispatched == Dispatched::Full {
            continue;
        }
        let mut wait = worker.idle_wait(dispatched).await;
        if dispatched == Dispatched::None || worker.slots.available_permits() == 0 {
            // Due rows we could not take (locked by another replica, or no free slot) must not
            // make this loop spin.
            wait = wait.max(Duration::from_millis(20));
        }
        tokio::select! {
            _ = stop.changed() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = worker.wake.notified() => {}
            _ = settings.relay.wake.notified() => {}
            // Another replica's ingress stored deliveries (or the feed reconnected: look again).
            _ = settings.outbox_changed.notified() => {}
        }
    }

    let drained = tokio::time::timeout(DRAIN, worker.slots.acquire_many(CONCURRENCY as u32)).await;
    if drained.is_err() {
        tracing::warn!(
            "webhook attempts still in flight at shutdown will be retried after their lease"
        );
    }
    reconciler.abort();
    deletions.abort();
}

/// What one round of claiming came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dispatched {
    /// Nothing claimed (no free slot, nothing due, or the claim failed).
    None,
    Some,
    /// As many as there were free slots: more may be due at once.
    Full,
}

fn delivery_client() -> awc::Client {
    awc::Client::builder()
        .connector(
            awc::Connector::new()
                .timeout(CONNECT_TIMEOUT)
                .limit(CONCURRENCY)
                .conn_keep_alive(Duration::from_secs(30)),
        )
        .timeout(ATTEMPT_TIMEOUT)
        .disable_redirects()
        .no_default_headers()
        .add_default_header(("user-agent", "wa-gateway-webhooks"))
        .finish()
}

/// What one attempt came to.
#[derive(Debug)]
enum Attempt {
    /// With the wait its `Retry-After` asked for, on a 429 or 503 (bounded).
    Answered(StatusCode, Option<Duration>),
    Unreachable(String),
    TimedOut,
    Refused(TargetRefused),
}

impl Worker {
    /// Claims as many due deliveries as there are free slots and starts an attempt for each.
    async fn dispatch(self: &Rc<Self>) -> Dispatched {
        let free = self.slots.available_permits();
        if free == 0 {
            return Dispatched::None;
        }
        let rows = match outbox::claim(&self.pool, free as i64, LEASE, IN_FLIGHT).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!("claiming webhook deliveries: {e}");
                return Dispatched::None;
            }
        };
        let dispatched = match rows.len() {
            0 => Dispatched::None,
            n if n == free => Dispatched::Full,
            _ => Dispatched::Some,
        };
        for row in rows {
            let permit = self
                .slots
                .clone()
                .try_acquire_owned()
                .expect("claimed no more than the free slots");
            let worker = self.clone();
            actix_rt::spawn(async move {
                worker.deliver(row).await;
                drop(permit);
                worker.wake.notify_one();
            });
        }
        dispatched
    }

    /// How long to sleep unless woken: until the next row falls due, at most [`IDLE_POLL`].
    /// Also keeps the outbox depth gauge current, every [`DEPTH_EVERY`] (a count of the
    /// pending rows: too dear for every round).
    ///
    /// After a round that claimed rows the outbox is not read: the attempts it started wake
    /// the dispatcher as they end, new deliveries wake it by notification, and a retry falls
    /// due no sooner than [`MIN_RETRY_DELAY`], more than [`IDLE_POLL`] away.
    async fn idle_wait(&self, dispatched: Dispatched) -> Duration {
        if self.depth_read.get().elapsed() >= DEPTH_EVERY {
            self.depth_read.set(Instant::now());
            match outbox::depth(&self.pool).await {
                Ok(depth) => self.metrics.webhook_outbox_depth.set(depth),
                Err(e) => tracing::warn!("reading the webhook outbox's depth: {e}"),
            }
        }
        if dispatched == Dispatched::Some {
            return IDLE_POLL;
        }
        match outbox::next_due(&self.pool).await {
            Ok(next) => next.at.map_or(IDLE_POLL, |at| {
                (at - next.now)
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .min(IDLE_POLL)
            }),
            Err(e) => {
                tracing::warn!("reading when the next webhook delivery falls due: {e}");
                IDLE_POLL
            }
        }
    }

    async fn deliver(&self, claimed: Claimed) {
        let started = Instant::now();
        let attempt = self.attempt(&claimed).await;
        let completion = judge(&claimed, attempt);
        let outcome = match &completion {
            Completion::Delivered { .. } => "delivered",
            Completion::Retry { .. } => "retry",
            Completion::Failed { .. } => "failed",
        };
        self.metrics
            .webhook_deliveries
            .with_label_values(&[outcome])
            .inc();
        self.metrics
            .webhook_attempt_latency
            .with_label_values(&[outcome])
            .observe(started.elapsed().as_secs_f64());
        // Not recorded (logged): the row falls due again when its lease ends.
        let Ok(failing_long) = self
            .outcomes
            .record(Finished::of(&claimed, completion.clone()))
            .await
        else {
            return;
        };
        // Standard Webhooks: a 410 asks for the endpoint to be disabled.
        let gone = matches!(
            completion,
            Completion::Failed {
                status: Some(410),
                ..
            }
        );
        if failing_long || gone {
            let reason = if gone {
                "the receiver answered 410 Gone".to_owned()
            } else {
                format!(
                    "the receiver failed every attempt for {} s",
                    self.disable_after.as_secs()
                )
            };
            let lists = &self.subscriptions;
            let disabled = health::disable(&self.pool, lists, claimed.subscription_id, &reason);
            if let Err(e) = disabled.await {
                // The next failure tries again.
                tracing::warn!(webhook = %claimed.subscription_id, "disabling a failing webhook: {e}");
            }
        }
    }

    async fn attempt(&self, claimed: &Claimed) -> Attempt {
        tokio::time::timeout(ATTEMPT_DEADLINE, self.resolve_and_send(claimed))
            .await
            .unwrap_or(Attempt::TimedOut)
    }

    async fn resolve_and_send(&self, claimed: &Claimed) -> Attempt {
        let url = match Url::parse(&claimed.url) {
            Ok(url) => url,
            Err(_) => return Attempt::Refused(TargetRefused::Scheme),
        };
        // The address is checked after resolution and then connected to as is. A name that
        // does not resolve now may later: that is retried, unlike an address not allowed.
        let address = match ssrf::resolve(&url, self.allow_private).await {
            Ok(address) => address,
            Err(unresolved @ TargetRefused::NotAllowed(Why::Unresolved(_))) => {
                return Attempt::Unreachable(unresolved.detail())
            }
            Err(refused) => return Attempt::Refused(refused),
        };
        let mut request = self
            .http
            .post(url.as_str())
            .address(address)
            .insert_header(("content-type", "application/json"));
        for h in &claimed.custom_headers {
            request = request.insert_header((h.name.as_str(), h.value.as_str()));
        }
        for (name, value) in signature_headers(claimed) {
            request = request.insert_header((name, value));
        }
        match request.send_body(claimed.body.clone()).await {
            Ok(mut response) => {
                let status = response.status();
                let asked = (status == StatusCode::TOO_MANY_REQUESTS
                    || status == StatusCode::SERVICE_UNAVAILABLE)
                    .then(|| response.headers().get("retry-after"))
                    .flatten()
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| retry_after::parse(v, std::time::SystemTime::now()));
                // Drain a little of the answer so the connection can be reused; its content
                // is the receiver's business and is not kept.
                let _ = response.body().limit(MAX_ANSWER).await;
                Attempt::Answered(status, asked)
            }
            Err(SendRequestError::Timeout)
            | Err(SendRequestError::Connect(ConnectError::Timeout)) => Attempt::TimedOut,
            Err(e) => Attempt::Unreachable(e.to_string()),
        }
    }
}

/// The headers that sign a delivery, and say which attempt it is, by the subscription's
/// scheme. Standard Webhooks' `webhook-id` is the delivery's id, the same on every attempt, so
/// a receiver can deduplicate; its timestamp is the attempt's, in seconds.
fn signature_headers(claimed: &Claimed) -> Vec<(&'static str, String)> {
    match &claimed.signing {
        Keys::HmacSha512(key) => {
            let mut headers = vec![
                (REQUEST_ID_HEADER, uuid::Uuid::new_v4().to_string()),
                (
                    TIMESTAMP_HEADER,
                    chrono::Utc::now().timestamp_millis().to_string(),
                ),
            ];
            if let Some(key) = key {
                headers.push((HMAC_HEADER, signing::sign(key.as_bytes(), &claimed.body)));
                headers.push((ALGORITHM_HEADER, ALGORITHM.to_owned()));
            }
            headers
        }
        Keys::Standard { current, previous } => {
            let id = claimed.id.to_string();
            let timestamp = chrono::Utc::now().timestamp();
            let secrets = std::iter::once(current).chain(previous.as_ref());
            let signature = signing::standard_signature(secrets, &id, timestamp, &claimed.body);
            vec![
                (STANDARD_ID_HEADER, id),
                (STANDARD_TIMESTAMP_HEADER, timestamp.to_string()),
                (STANDARD_SIGNATURE_HEADER, signature),
            ]
        }
    }
}

/// Delivered on 2xx; retried on network errors, timeouts, 5xx and 429 while attempts remain,
/// no sooner than [`MIN_RETRY_DELAY`] and, when the receiver asked with `Retry-After`, no
/// sooner than it asked (bounded in `retry_after`); given up at once on any other answer (4xx,
/// and 3xx since redirects are not followed) and on a refused address.
fn judge(claimed: &Claimed, attempt: Attempt) -> Completion {
    let (status, error, asked) = match attempt {
        Attempt::Answered(s, _) if s.is_success() => {
            return Completion::Delivered { status: s.as_u16() }
        }
        Attempt::Answered(s, asked)
            if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS =>
        {
            (
                Some(s.as_u16()),
                format!("the receiver answered {s}"),
                asked,
            )
        }
        Attempt::Answered(s, _) => {
            return Completion::Failed {
                status: Some(s.as_u16()),
                error: format!("the receiver answered {s}; not retried"),
            }
        }
        Attempt::Refused(refused) => {
            // The detail (which may name an internal address) is for admins; tenants are
            // shown only that the receiver could not be reached.
            return Completion::Failed {
                status: None,
                error: refused.detail(),
            };
        }
        Attempt::TimedOut => (None, "the receiver did not answer in time".to_owned(), None),
        Attempt::Unreachable(e) => (None, format!("the receiver is unreachable: {e}"), None),
    };
    match claimed.retries.delay_after(claimed.attempt) {
        Some(after) => Completion::Retry {
            after: after.max(MIN_RETRY_DELAY).max(asked.unwrap_or_default()),
            status,
            error,
        },
        None => Completion::Failed {
            status,
            error: format!("{error}; all {} attempts spent", claimed.retries.attempts),
        },
    }
}

/// Retries upstream session deletions that failed when their tenant was deleted.
async fn retry_session_deletions(pool: Db, client: Rc<UpstreamClient>, quotas: Arc<Quotas>) {
    loop {
        tokio::time::sleep(DELETION_RETRY_EVERY).await;
        let gateway = crate::services::upstream::Gateway::new(&client, &quotas);
        let (deleted, pending) =
            crate::services::tenancy::tenants::delete_pending_upstream_sessions(&pool, gateway)
                .await;
        if deleted > 0 {
            tracing::info!(
                deleted,
                pending,
                "deleted upstream sessions of deleted tenants"
            );
        }
    }
}

/// Keeps every session's ingress registered with the upstream: registrations that failed, and
/// sessions from before every session was registered. A session that keeps failing is tried
/// less and less often (up to every 5 minutes), since each try may spend the budget.
async fn reconcile(
    pool: Db,
    (live, test): (Rc<UpstreamClient>, Rc<UpstreamClient>),
    quotas: Arc<Quotas>,
    relay: Arc<Relay>,
) {
    let registrar = Registrar {
        db: &pool,
        upstreams: Upstreams {
            live: &live,
            test: &test,
        },
        quotas: &quotas,
        relay: &relay,
    };
    let mut waits: HashMap<String, (Instant, Duration)> = HashMap::new();
    loop {
        tokio::time::sleep(RECONCILE_EVERY).await;
        let work = match registration::out_of_step(&pool).await {
            Ok(work) => work,
            Err(e) => {
                tracing::warn!("finding webhook registrations to bring in step: {e}");
                continue;
            }
        };
        for stale in work {
            let key = stale.upstream.as_str().to_owned();
            if waits
                .get(&key)
                .is_some_and(|(until, _)| Instant::now() < *until)
            {
                continue;
            }
            let session = SessionRef {
                tenant: &stale.tenant,
                mode: stale.mode,
                name: &stale.name,
                upstream: &stale.upstream,
            };
            match registrar.resync(&session).await {
                Ok(()) => {
                    waits.remove(&key);
                }
                Err(e) => {
                    let wait = waits.get(&key).map_or(Duration::from_secs(5), |(_, w)| {
                        (*w * 2).min(Duration::from_secs(300))
                    });
                    waits.insert(key, (Instant::now() + wait, wait));
                    tracing::warn!(tenant = %stale.tenant.id, session = stale.name, "webhook registration not brought in step: {e:?}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::webhooks::{Backoff, RetryPolicy};

    fn claimed(attempt: i32) -> Claimed {
        Claimed {
            id: uuid::Uuid::nil(),
            subscription_id: uuid::Uuid::nil(),
            attempt,
            body: bytes::Bytes::new(),
            url: "http://example.com".into(),
            signing: Keys::HmacSha512(None),
            custom_headers: vec![],
            retries: RetryPolicy {
                policy: Backoff::Constant,
                delay_seconds: 2,
                attempts: 3,
            },
        }
    }

    fn answered(status: StatusCode) -> Attempt {
        Attempt::Answered(status, None)
    }

    fn retry_after(completion: Completion) -> Duration {
        match completion {
            Completion::Retry { after, .. } => after,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_retry_waits_at_least_a_second_and_what_the_receiver_asked() {
        let mut eager = claimed(1);
        eager.retries.delay_seconds = 0;
        assert_eq!(
            retry_after(judge(&eager, answered(StatusCode::BAD_GATEWAY))),
            MIN_RETRY_DELAY
        );
        let asked = Attempt::Answered(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(Duration::from_secs(30)),
        );
        assert_eq!(
            retry_after(judge(&claimed(1), asked)),
            Duration::from_secs(30)
        );
        // Asking for less than the policy's wait does not make it sooner.
        let asked = Attempt::Answered(StatusCode::TOO_MANY_REQUESTS, Some(Duration::from_secs(1)));
        assert_eq!(
            retry_after(judge(&claimed(1), asked)),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn standard_deliveries_carry_the_three_headers_and_one_signature_per_secret() {
        use crate::domain::webhook_signing::WebhookSecret;
        let mut c = claimed(1);
        let (current, previous) = (WebhookSecret::generate(), WebhookSecret::generate());
        c.signing = Keys::Standard {
            current: current.clone(),
            previous: Some(previous),
        };
        let headers: HashMap<_, _> = signature_headers(&c).into_iter().collect();
        assert_eq!(headers.len(), 3, "{headers:?}");
        assert_eq!(headers[STANDARD_ID_HEADER], c.id.to_string());
        let ts: i64 = headers[STANDARD_TIMESTAMP_HEADER].parse().unwrap();
        assert!((ts - chrono::Utc::now().timestamp()).abs() <= 2);
        let signatures: Vec<&str> = headers[STANDARD_SIGNATURE_HEADER].split(' ').collect();
        assert_eq!(signatures.len(), 2);
        assert_eq!(
            signatures[0],
            signing::standard_signature([&current], &c.id.to_string(), ts, &c.body)
        );
        let plain: HashMap<_, _> = signature_headers(&claimed(1)).into_iter().collect();
        assert!(!plain.contains_key(HMAC_HEADER), "unsigned without a key");
    }

    #[test]
    fn retries_on_5xx_429_and_network_errors_until_attempts_are_spent() {
        for attempt in [
            answered(StatusCode::INTERNAL_SERVER_ERROR),
            answered(StatusCode::TOO_MANY_REQUESTS),
            Attempt::TimedOut,
            Attempt::Unreachable("refused".into()),
        ] {
            assert!(matches!(
                judge(&claimed(1), attempt),
                Completion::Retry { after, .. } if after == Duration::from_secs(2)
            ));
        }
        assert!(matches!(
            judge(&claimed(3), answered(StatusCode::BAD_GATEWAY)),
            Completion::Failed {
                status: Some(502),
                ..
            }
        ));
    }

    #[test]
    fn other_answers_stop_at_once() {
        for s in [StatusCode::BAD_REQUEST, StatusCode::GONE, StatusCode::FOUND] {
            assert!(matches!(
                judge(&claimed(1), answered(s)),
                Completion::Failed { .. }
            ));
        }
        assert!(matches!(
            judge(&claimed(1), answered(StatusCode::NO_CONTENT)),
            Completion::Delivered { status: 204 }
        ));
        assert!(matches!(
            judge(
                &claimed(1),
                Attempt::Refused(TargetRefused::NotAllowed(Why::Internal(
                    "127.0.0.1".parse().unwrap()
                )))
            ),
            Completion::Failed { status: None, .. }
        ));
    }
}
