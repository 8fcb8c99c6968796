//! The outbox: verified events (`webhook_events`, with their ids kept apart in
//! `webhook_event_keys`) and one delivery per matching subscription (`webhook_deliveries`).
//!
//! A row is claimed by moving its `next_attempt_at` past the attempt's deadline (the lease) in
//! the same statement that locks it with `FOR UPDATE SKIP LOCKED`: no two replicas take the
//! same row, and a replica that dies mid-attempt leaves a row that simply falls due again.
//! Completions are conditional on the attempt number they claimed, so a late answer can never
//! overwrite a newer attempt.

use crate::db::Db;
use crate::domain::webhook_signing::{Scheme, WebhookSecret};
use crate::domain::webhooks::{Backoff, CustomHeader, DeliveryStatus, RetryPolicy};
use crate::domain::Mode;
use crate::store::StoreError;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::PgExecutor;
use std::future::Future;
use std::time::Duration;
use uuid::Uuid;

/// Woken by redelivery so workers on every replica start at once.
pub const NOTIFY_CHANNEL: &str = "wagw_webhook_outbox";
/// Event ids are remembered at least this long, whatever the retention of bodies: far longer
/// than the ingress accepts an event's `timestamp` (an hour), so a replay is always either too
/// old or recognised.
pub const MIN_EVENT_KEY_RETENTION: Duration = Duration::from_secs(2 * 86_400);
/// Rows one purge statement deletes at most, so a large purge never holds long locks.
const PURGE_BATCH: u64 = 1000;

/// A verified event on its way in, as the tenant will receive it.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub upstream_session: String,
    pub event_id: String,
    pub tenant_id: Uuid,
    pub session_name: String,
    /// The session's mode: only subscriptions of that mode get the event.
    pub mode: Mode,
    pub event: String,
    pub body: Vec<u8>,
    /// An incoming `message.any`: subscriptions that also take `message` get it from there.
    pub incoming_duplicate: bool,
}

/// A claimed delivery with everything an attempt needs.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: Uuid,
    pub subscription_id: Uuid,
    /// This attempt's number (1 for the first).
    pub attempt: i32,
    pub body: Bytes,
    pub url: String,
    pub signing: Keys,
    pub custom_headers: Vec<CustomHeader>,
    pub retries: RetryPolicy,
}

/// The keys an attempt signs with.
#[derive(Clone, PartialEq, Eq)]
pub enum Keys {
    HmacSha512(Option<String>),
    /// The current secret, and the previous one while its grace period lasts.
    Standard {
        current: WebhookSecret,
        previous: Option<WebhookSecret>,
    },
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Keys::HmacSha512(key) => write!(f, "HmacSha512(signed: {})", key.is_some()),
            Keys::Standard { previous, .. } => {
                write!(f, "Standard(rotating: {})", previous.is_some())
            }
        }
    }
}

/// How many attempts may be in flight at once, across every replica.
#[derive(Debug, Clone, Copy)]
pub struct InFlight {
    /// To one endpoint (subscription).
    pub per_endpoint: i64,
    /// To all of one tenant's endpoints.
    pub per_tenant: i64,
}

/// How an attempt ended, as far as the outbox is concerned.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    Delivered {
        status: u16,
    },
    /// Try again after `after`.
    Retry {
        after: Duration,
        status: Option<u16>,
        error: String,
    },
    /// Given up: a 4xx, a refused address, or every attempt spent.
    Failed {
        status: Option<u16>,
        error: String,
    },
}

/// When the next pending row falls due, if any, and the database's clock.
#[derive(Debug, Clone, Copy)]
pub struct NextDue {
    pub at: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

/// Stores `events` and their deliveries in one statement (so one round trip and one commit,
/// however many there are), answering for each, in order, how many deliveries it made, or
/// `None` when it was already stored (before, or earlier in `events`).
pub async fn insert_events(
    db: impl PgExecutor<'_>,
    events: &[NewEvent],
) -> Result<Vec<Option<i64>>, StoreError> {
    let ids: Vec<Uuid> = events.iter().map(|_| Uuid::now_v7()).collect();
    let column = |f: fn(&NewEvent) -> &str| events.iter().map(f).collect::<Vec<_>>();
    let tenants: Vec<Uuid> = events.iter().map(|e| e.tenant_id).collect();
    let bodies: Vec<&[u8]> = events.iter().map(|e| e.body.as_slice()).collect();
    let duplicates: Vec<bool> = events.iter().map(|e| e.incoming_duplicate).collect();
    // No NOTIFY: it serialises every committing transaction that sends one; this replica's
    // workers are woken in-process and the others find the rows on their next poll. An
    // event's key is recorded first and kept longer than its body, so a replay is recognised
    // even after the body was purged. Two copies of one event in `events` meet the same key:
    // the second inserts nothing.
    let made = sqlx::query!(
        r#"WITH input AS (
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::text[],
                                  $6::text[], $7::bytea[], $8::bool[], $9::text[])
               AS t(id, upstream_session, event_id, tenant_id, session_name, event, body,
                    incoming_duplicate, mode)),
           key AS (
             INSERT INTO webhook_event_keys (upstream_session, event_id)
             SELECT upstream_session, event_id FROM input
             ON CONFLICT DO NOTHING RETURNING upstream_session, event_id),
           event AS (
             INSERT INTO webhook_events (id, upstream_session, event_id, tenant_id, session_name, event, body, mode)
             SELECT i.id, i.upstream_session, i.event_id, i.tenant_id, i.session_name, i.event, i.body, i.mode
             FROM input i JOIN key k USING (upstream_session, event_id)
             ON CONFLICT ON CONSTRAINT webhook_events_dedupe_key DO NOTHING RETURNING id),
           deliveries AS (
             INSERT INTO webhook_deliveries (id, event_pk, subscription_id, tenant_id, session_name, mode)
             SELECT gen_random_uuid(), e.id, w.id, w.tenant_id, w.session_name, w.mode
             FROM event e JOIN input i ON i.id = e.id
             JOIN webhook_subscriptions w
               ON w.tenant_id = i.tenant_id AND w.mode = i.mode AND w.session_name = i.session_name
              AND i.event = ANY(w.events) AND NOT (i.incoming_duplicate AND 'message' = ANY(w.events))
             ON CONFLICT ON CONSTRAINT webhook_deliveries_once_key DO NOTHING RETURNING event_pk)
           SELECT e.id AS "id!", count(d.event_pk) AS "made!"
           FROM event e LEFT JOIN deliveries d ON d.event_pk = e.id GROUP BY e.id"#,
        &ids,
        &column(|e| &e.upstream_session) as &[&str],
        &column(|e| &e.event_id) as &[&str],
        &tenants,
        &column(|e| &e.session_name) as &[&str],
        &column(|e| &e.event) as &[&str],
        &bodies as &[&[u8]],
        &duplicates,
        &column(|e| e.mode.as_str()) as &[&str],
    )
    .fetch_all(db)
    .await?;
    let made: std::collections::HashMap<Uuid, i64> =
        made.into_iter().map(|r| (r.id, r.made)).collect();
    Ok(ids.iter().map(|id| made.get(id).copied()).collect())
}

/// Takes up to `limit` due deliveries, leasing each for `lease`, fairly: never more than
/// `in_flight` allows per endpoint and per tenant (counting every replica's attempts), and
/// round-robin across tenants (each tenant's first due delivery before anyone's second).
/// Disabled endpoints are skipped. The walk is over the endpoints that have pending rows (a
/// loose index scan) and each one's earliest due rows, so an endpoint with a large backlog
/// costs no more than one with a single row. Attempts in flight (`busy`) are counted per
/// endpoint through the in-flight index (a few rows) rather than by scanning the table: every
/// row in flight is pending, so its endpoint is among `endpoints`. The picked ids are locked
/// as one array, so the rows are found by primary key whatever the planner thinks of the due
/// rows (it would scan them all to join with a few).
pub async fn claim(
    db: &Db,
    limit: i64,
    lease: Duration,
    in_flight: InFlight,
) -> Result<Vec<Claimed>, StoreError> {
    let rows = sqlx::query!(
        r#"WITH RECURSIVE endpoints AS (
             (SELECT subscription_id AS id FROM webhook_deliveries WHERE status = 'pending'
              ORDER BY subscription_id LIMIT 1)
             UNION ALL
             SELECT (SELECT d.subscription_id FROM webhook_deliveries d
                     WHERE d.status = 'pending' AND d.subscription_id > e.id
                     ORDER BY d.subscription_id LIMIT 1)
             FROM endpoints e WHERE e.id IS NOT NULL),
           busy AS (
             SELECT e.id, w.tenant_id, w.disabled_at IS NULL AS enabled,
                    (SELECT count(*) FROM webhook_deliveries b
                     WHERE b.subscription_id = e.id AND b.leased_until IS NOT NULL
                       AND b.leased_until > now()) AS n
             FROM endpoints e JOIN webhook_subscriptions w ON w.id = e.id),
           tenant_busy AS (SELECT tenant_id, sum(n)::bigint AS n FROM busy GROUP BY tenant_id),
           candidates AS (
             SELECT c.id, c.tenant_id, c.next_attempt_at,
                    row_number() OVER (PARTITION BY c.subscription_id
                                       ORDER BY c.next_attempt_at) AS endpoint_rank
             FROM busy b
             CROSS JOIN LATERAL (
               SELECT d.id, d.tenant_id, d.subscription_id, d.next_attempt_at
               FROM webhook_deliveries d
               WHERE d.subscription_id = b.id AND d.status = 'pending'
                 AND d.next_attempt_at <= now()
               ORDER BY d.next_attempt_at
               LIMIT greatest(0, $3 - b.n)) c
             WHERE b.enabled),
           fair AS (
             SELECT c.id, c.next_attempt_at,
                    row_number() OVER (PARTITION BY c.tenant_id
                                       ORDER BY c.endpoint_rank, c.next_attempt_at) AS tenant_rank,
                    coalesce(t.n, 0) AS tenant_busy
             FROM candidates c LEFT JOIN tenant_busy t ON t.tenant_id = c.tenant_id),
           picked AS (
             SELECT id FROM fair WHERE tenant_rank + tenant_busy <= $4
             ORDER BY tenant_rank, next_attempt_at LIMIT $1),
           claimed AS (
             UPDATE webhook_deliveries d SET attempts = d.attempts + 1, last_attempt_at = now(),
                    next_attempt_at = now() + make_interval(secs => $2),
                    leased_until = now() + make_interval(secs => $2)
             WHERE d.id IN (SELECT id FROM webhook_deliveries
                            WHERE id = ANY(ARRAY(SELECT id FROM picked))
                              AND status = 'pending' AND next_attempt_at <= now()
                            FOR UPDATE SKIP LOCKED)
             RETURNING d.id, d.attempts, d.event_pk, d.subscription_id)
           SELECT c.id AS "id!", c.subscription_id AS "subscription_id!",
                  c.attempts AS "attempt!", e.body, w.url, w.hmac_key,
                  w.signing AS "signing: Scheme", w.signing_secret,
                  CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret END
                      AS previous_secret,
                  w.custom_headers AS "custom_headers: Json<Vec<CustomHeader>>",
                  w.retry_policy AS "retry_policy: Backoff", w.retry_delay_seconds,
                  w.retry_attempts
           FROM claimed c JOIN webhook_events e ON e.id = c.event_pk
           JOIN webhook_subscriptions w ON w.id = c.subscription_id"#,
        limit,
        lease.as_secs_f64(),
        in_flight.per_endpoint,
        in_flight.per_tenant,
    )
    .fetch_all(db)
    .await?;
    let secret = |raw: Option<String>| raw.and_then(|s| WebhookSecret::parse(&s).ok());
    Ok(rows
        .into_iter()
        .map(|r| Claimed {
            id: r.id,
            subscription_id: r.subscription_id,
            attempt: r.attempt,
            body: Bytes::from(r.body),
            url: r.url,
            signing: match (r.signing, secret(r.signing_secret)) {
                (Scheme::Standard, Some(current)) => Keys::Standard {
                    current,
                    previous: secret(r.previous_secret),
                },
                // The table's CHECK keeps a standard subscription's secret; stored secrets
                // were checked when given.
                _ => Keys::HmacSha512(r.hmac_key),
            },
            custom_headers: r.custom_headers.0,
            retries: RetryPolicy {
                policy: r.retry_policy,
                delay_seconds: r.retry_delay_seconds,
                attempts: r.retry_attempts,
            },
        })
        .collect())
}

/// An attempt that has ended, to be recorded: the row and attempt it claimed, and how it ended.
#[derive(Debug, Clone)]
pub struct Finished {
    pub id: Uuid,
    pub subscription_id: Uuid,
    pub attempt: i32,
    pub completion: Completion,
}

impl Finished {
    pub fn of(claimed: &Claimed, completion: Completion) -> Self {
        Self {
            id: claimed.id,
            subscription_id: claimed.subscription_id,
            attempt: claimed.attempt,
            completion,
        }
    }
}

/// What recording an attempt did to its endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Completed {
    /// The endpoint has now been failing for at least `disable_after`.
    pub failing_long: bool,
    /// The endpoint's `failing_since` changed (set or cleared): its tenant and mode, whose
    /// listed subscriptions show it.
    pub health_changed: Option<(Uuid, Mode)>,
}

/// Records every attempt of `finished` in one transaction (one commit, however many), each by
/// the statement [`complete`] runs, so each sees the health its predecessors left. Rows are
/// taken by endpoint, then id, so two replicas' transactions lock endpoints in one order.
/// Answers, in the order given, what each did to its endpoint.
pub async fn complete_all(
    db: &Db,
    finished: &[Finished],
    disable_after: Duration,
) -> Result<Vec<Completed>, StoreError> {
    let mut order: Vec<usize> = (0..finished.len()).collect();
    order.sort_by_key(|&i| (finished[i].subscription_id, finished[i].id));
    let mut completed = vec![Completed::default(); finished.len()];
    let mut tx = db.begin().await?;
    for i in order {
        completed[i] = complete(&mut *tx, &finished[i], disable_after).await?;
    }
    tx.commit().await?;
    Ok(completed)
}

/// Records how the claimed attempt ended, unless a newer attempt has the row, and keeps the
/// endpoint's health: a success clears its `failing_since`, a failure sets it when unset.
/// Answers whether the endpoint has now been failing for at least `disable_after` (by the
/// database's clock), and whether its health changed.
pub async fn complete(
    db: impl PgExecutor<'_>,
    finished: &Finished,
    disable_after: Duration,
) -> Result<Completed, StoreError> {
    let (status, next_in, last_status, error) = match &finished.completion {
        Completion::Delivered { status } => (
            DeliveryStatus::Delivered,
            0.0,
            Some(i32::from(*status)),
            None,
        ),
        Completion::Retry {
            after,
            status,
            error,
        } => (
            DeliveryStatus::Pending,
            after.as_secs_f64(),
            status.map(i32::from),
            Some(error.as_str()),
        ),
        Completion::Failed { status, error } => (
            DeliveryStatus::Failed,
            0.0,
            status.map(i32::from),
            Some(error.as_str()),
        ),
    };
    let delivered = status == DeliveryStatus::Delivered;
    let row = sqlx::query!(
        r#"WITH done AS (
             UPDATE webhook_deliveries SET status = $3, last_status = $4, last_error = $5,
                    next_attempt_at = CASE WHEN $3 = 'pending'
                        THEN now() + make_interval(secs => $6) ELSE next_attempt_at END,
                    finished_at = CASE WHEN $3 = 'pending' THEN NULL ELSE now() END,
                    leased_until = NULL
             WHERE id = $1 AND attempts = $2 AND status = 'pending'
             RETURNING subscription_id),
           health AS (
             UPDATE webhook_subscriptions w
             SET failing_since = CASE WHEN $7 THEN NULL ELSE now() END
             FROM done WHERE w.id = done.subscription_id
               AND (CASE WHEN $7 THEN w.failing_since IS NOT NULL
                         ELSE w.failing_since IS NULL END)
             RETURNING w.id)
           SELECT (NOT $7 AND w.failing_since <= now() - make_interval(secs => $8)
                   AND NOT EXISTS (SELECT 1 FROM health)) AS "failing_long!",
                  EXISTS (SELECT 1 FROM health) AS "health_changed!",
                  w.tenant_id, w.mode AS "mode: Mode"
           FROM done JOIN webhook_subscriptions w ON w.id = done.subscription_id"#,
        finished.id,
        finished.attempt,
        status.as_str(),
        last_status,
        error,
        next_in,
        delivered,
        disable_after.as_secs_f64(),
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map_or_else(Completed::default, |r| Completed {
        failing_long: r.failing_long,
        health_changed: r.health_changed.then_some((r.tenant_id, r.mode)),
    }))
}

/// When the next pending row falls due (an index lookup: the earliest), by the database's
/// clock.
pub async fn next_due(db: &Db) -> Result<NextDue, StoreError> {
    let next = sqlx::query_as!(
        NextDue,
        r#"SELECT (SELECT next_attempt_at FROM webhook_deliveries WHERE status = 'pending'
                   ORDER BY next_attempt_at LIMIT 1) AS at, now() AS "now!""#,
    )
    .fetch_one(db)
    .await?;
    Ok(next)
}

/// The outbox's depth: pending rows (a count of them all, so read it seldom).
pub async fn depth(db: &Db) -> Result<i64, StoreError> {
    let depth = sqlx::query_scalar!(
        r#"SELECT count(*) AS "depth!" FROM webhook_deliveries WHERE status = 'pending'"#
    )
    .fetch_one(db)
    .await?;
    Ok(depth)
}

/// Wakes the delivery workers of every replica when `db`'s transaction commits.
pub async fn notify(db: impl PgExecutor<'_>) -> Result<(), StoreError> {
    sqlx::query!("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)
        .execute(db)
        .await?;
    Ok(())
}

/// How long each kind of row is kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub delivered: Duration,
    pub failed: Duration,
    /// The event log (`WAGW_EVENT_RETENTION_SECS`): an event still referred to by a delivery
    /// is kept longer.
    pub events: Duration,
}

/// Retention: delivered deliveries after `delivered`, failed ones after `failed`, then events
/// older than `events` that no delivery refers to any more, then event ids older than both
/// `delivered` and [`MIN_EVENT_KEY_RETENTION`]. Answers the deliveries and events purged.
pub async fn purge(db: &Db, retention: Retention) -> Result<u64, StoreError> {
    let Retention {
        delivered,
        failed,
        events,
    } = retention;
    let mut purged = 0;
    for (status, keep) in [
        (DeliveryStatus::Delivered, delivered),
        (DeliveryStatus::Failed, failed),
    ] {
        purged += in_batches(|| async {
            sqlx::query!(
                "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries \
                 WHERE status = $1 AND finished_at < now() - make_interval(secs => $2) LIMIT 1000)",
                status.as_str(),
                keep.as_secs_f64(),
            )
            .execute(db)
            .await
        })
        .await?;
    }
    purged += in_batches(|| async {
        sqlx::query!(
            "DELETE FROM webhook_events WHERE id IN (SELECT e.id FROM webhook_events e \
             WHERE e.received_at < now() - make_interval(secs => $1) \
               AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_pk = e.id) \
             LIMIT 1000)",
            events.as_secs_f64(),
        )
        .execute(db)
        .await
    })
    .await?;
    let keep_keys = delivered.max(MIN_EVENT_KEY_RETENTION);
    in_batches(|| async {
        sqlx::query!(
            "DELETE FROM webhook_event_keys WHERE (upstream_session, event_id) IN ( \
               SELECT upstream_session, event_id FROM webhook_event_keys \
               WHERE received_at < now() - make_interval(secs => $1) LIMIT 1000)",
            keep_keys.as_secs_f64(),
        )
        .execute(db)
        .await
    })
    .await?;
    Ok(purged)
}

/// Runs a bounded delete until it deletes less than a batch; the rows deleted in all.
async fn in_batches<F, Fut>(mut batch: F) -> Result<u64, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<sqlx::postgres::PgQueryResult, sqlx::Error>>,
{
    let mut total = 0;
    loop {
        let n = batch().await?.rows_affected();
        total += n;
        if n < PURGE_BATCH {
            return Ok(total);
        }
    }
}
