//! The delivery outbox: the one place `webhook_deliveries` is written after ingress.
//!
//! A row is claimed by moving its `next_attempt_at` past the attempt's deadline (the lease) in
//! the same statement that locks it with `FOR UPDATE SKIP LOCKED`: no two replicas take the
//! same row, and a replica that dies mid-attempt leaves a row that simply falls due again.
//! Completions are conditional on the attempt number they claimed, so a late answer can never
//! overwrite a newer attempt.

use crate::db::Db;
use crate::services::webhooks::policy::{Backoff, RetryPolicy};
use bytes::Bytes;
use serde::Deserialize;
use std::time::Duration;
use uuid::Uuid;

/// Woken by ingress and redelivery so workers on every replica start at once.
pub const NOTIFY_CHANNEL: &str = "wagw_webhook_outbox";

/// A claimed delivery with everything an attempt needs.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: Uuid,
    /// This attempt's number (1 for the first).
    pub attempt: i32,
    pub body: Bytes,
    pub url: String,
    pub hmac_key: Option<String>,
    pub custom_headers: Vec<CustomHeader>,
    pub retries: RetryPolicy,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct CustomHeader {
    pub name: String,
    pub value: String,
}

type ClaimRow = (
    Uuid,
    i32,
    Vec<u8>,
    String,
    Option<String>,
    sqlx::types::Json<Vec<CustomHeader>>,
    String,
    i32,
    i32,
);

/// Takes up to `limit` due deliveries, leasing each for `lease`.
pub async fn claim(pool: &Db, limit: i64, lease: Duration) -> Result<Vec<Claimed>, sqlx::Error> {
    let rows: Vec<ClaimRow> = sqlx::query_as(
        "WITH claimed AS ( \
           UPDATE webhook_deliveries d SET attempts = d.attempts + 1, last_attempt_at = now(), \
                  next_attempt_at = now() + make_interval(secs => $2) \
           WHERE d.id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= now() \
                          ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) \
           RETURNING d.id, d.attempts, d.event_pk, d.subscription_id) \
         SELECT c.id, c.attempts, e.body, w.url, w.hmac_key, w.custom_headers, w.retry_policy, \
                w.retry_delay_seconds, w.retry_attempts \
         FROM claimed c JOIN webhook_events e ON e.id = c.event_pk \
         JOIN webhook_subscriptions w ON w.id = c.subscription_id",
    )
    .bind(limit)
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, attempt, body, url, hmac_key, headers, policy, delay, attempts)| Claimed {
                id,
                attempt,
                body: Bytes::from(body),
                url,
                hmac_key,
                custom_headers: headers.0,
                retries: RetryPolicy {
                    policy: Backoff::parse(&policy).unwrap_or(Backoff::Exponential),
                    delay_seconds: delay,
                    attempts,
                },
            },
        )
        .collect())
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

pub async fn complete(
    pool: &Db,
    claimed: &Claimed,
    completion: &Completion,
) -> Result<(), sqlx::Error> {
    let (status, next_in, last_status, error): (&str, f64, Option<i32>, Option<&str>) =
        match completion {
            Completion::Delivered { status } => ("delivered", 0.0, Some(i32::from(*status)), None),
            Completion::Retry {
                after,
                status,
                error,
            } => (
                "pending",
                after.as_secs_f64(),
                status.map(i32::from),
                Some(error),
            ),
            Completion::Failed { status, error } => {
                ("failed", 0.0, status.map(i32::from), Some(error))
            }
        };
    sqlx::query(
        "UPDATE webhook_deliveries SET status = $3, last_status = $4, last_error = $5, \
                next_attempt_at = CASE WHEN $3 = 'pending' THEN now() + make_interval(secs => $6) ELSE next_attempt_at END, \
                finished_at = CASE WHEN $3 = 'pending' THEN NULL ELSE now() END \
         WHERE id = $1 AND attempts = $2 AND status = 'pending'",
    )
    .bind(claimed.id)
    .bind(claimed.attempt)
    .bind(status)
    .bind(last_status)
    .bind(error)
    .bind(next_in)
    .execute(pool)
    .await?;
    Ok(())
}

/// The outbox's depth (pending rows) and when the next one falls due.
pub async fn standing(
    pool: &Db,
) -> Result<
    (
        i64,
        Option<chrono::DateTime<chrono::Utc>>,
        chrono::DateTime<chrono::Utc>,
    ),
    sqlx::Error,
> {
    sqlx::query_as(
        "SELECT count(*), min(next_attempt_at), now() FROM webhook_deliveries WHERE status = 'pending'",
    )
    .fetch_one(pool)
    .await
}

/// Event ids are remembered at least this long, whatever the retention of bodies: far longer
/// than the ingress accepts an event's `timestamp` (an hour), so a replay is always either too
/// old or recognised.
pub const MIN_EVENT_KEY_RETENTION: Duration = Duration::from_secs(2 * 86_400);

/// Retention: delivered deliveries after `delivered`, failed ones after `failed`, then events
/// no delivery refers to any more (and that are older than `delivered`, so late duplicates of
/// them are still recognised), then event ids older than both `delivered` and
/// [`MIN_EVENT_KEY_RETENTION`]. In bounded batches so a large purge never holds long locks.
pub async fn purge(pool: &Db, delivered: Duration, failed: Duration) -> Result<u64, sqlx::Error> {
    let mut purged = 0;
    for (status, keep) in [("delivered", delivered), ("failed", failed)] {
        loop {
            let n = sqlx::query(
                "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries \
                 WHERE status = $1 AND finished_at < now() - make_interval(secs => $2) LIMIT 1000)",
            )
            .bind(status)
            .bind(keep.as_secs_f64())
            .execute(pool)
            .await?
            .rows_affected();
            purged += n;
            if n < 1000 {
                break;
            }
        }
    }
    loop {
        let n = sqlx::query(
            "DELETE FROM webhook_events WHERE id IN (SELECT e.id FROM webhook_events e \
             WHERE e.received_at < now() - make_interval(secs => $1) \
               AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_pk = e.id) LIMIT 1000)",
        )
        .bind(delivered.as_secs_f64())
        .execute(pool)
        .await?
        .rows_affected();
        purged += n;
        if n < 1000 {
            break;
        }
    }
    let keep_keys = delivered.max(MIN_EVENT_KEY_RETENTION);
    loop {
        let n = sqlx::query(
            "DELETE FROM webhook_event_keys WHERE (upstream_session, event_id) IN ( \
               SELECT upstream_session, event_id FROM webhook_event_keys \
               WHERE received_at < now() - make_interval(secs => $1) LIMIT 1000)",
        )
        .bind(keep_keys.as_secs_f64())
        .execute(pool)
        .await?
        .rows_affected();
        if n < 1000 {
            break;
        }
    }
    Ok(purged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_headers_round_trip_as_stored() {
        let h: Vec<CustomHeader> =
            serde_json::from_str(r#"[{"name":"X-Token","value":"abc"}]"#).unwrap();
        assert_eq!(h[0].name, "X-Token");
        assert_eq!(h[0].value, "abc");
    }
}
