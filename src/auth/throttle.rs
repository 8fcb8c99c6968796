//! Counting failures (admin logins, wrong key secrets) so guessing is slowed, then refused.
//!
//! Counts live in PostgreSQL, one row per subject, updated by one conditional statement: every
//! replica sees the same count, so spreading guesses over replicas gains nothing. The window
//! runs from a subject's first failure; rows whose window ended are purged in the background.

use crate::db::Db;
use std::time::Duration;

pub struct FailureLimiter {
    pool: Db,
    /// Which count this is (`login_user`, `login_addr`, `key`): subjects of different kinds
    /// never share a row.
    kind: &'static str,
    /// Failures after which attempts are refused until the window passes.
    pub limit: u32,
    pub window: Duration,
}

impl FailureLimiter {
    pub fn new(pool: Db, kind: &'static str, limit: u32, window: Duration) -> Self {
        Self {
            pool,
            kind,
            limit,
            window,
        }
    }

    /// Whole seconds until `subject` may try again, when it has used up its failures.
    pub async fn refusal(&self, subject: &str) -> Result<Option<u64>, sqlx::Error> {
        let wait: Option<f64> = sqlx::query_scalar(
            "SELECT EXTRACT(EPOCH FROM (window_ends - now()))::double precision
               FROM auth_failures
              WHERE kind = $1 AND subject = $2 AND failures >= $3 AND window_ends > now()",
        )
        .bind(self.kind)
        .bind(subject)
        .bind(self.limit as i32)
        .fetch_optional(&self.pool)
        .await?;
        Ok(wait.map(|secs| (secs.ceil() as u64).max(1)))
    }

    /// Counts one failure; returns the failures in the current window, this one included.
    pub async fn record_failure(&self, subject: &str) -> Result<u32, sqlx::Error> {
        let failures: i32 = sqlx::query_scalar(
            "INSERT INTO auth_failures AS f (kind, subject, failures, window_ends)
                  VALUES ($1, $2, 1, now() + make_interval(secs => $3))
             ON CONFLICT (kind, subject) DO UPDATE
                SET failures = CASE WHEN f.window_ends > now() THEN f.failures + 1 ELSE 1 END,
                    window_ends = CASE WHEN f.window_ends > now() THEN f.window_ends
                                       ELSE now() + make_interval(secs => $3) END
             RETURNING failures",
        )
        .bind(self.kind)
        .bind(subject)
        .bind(self.window.as_secs_f64())
        .fetch_one(&self.pool)
        .await?;
        Ok(failures.max(0) as u32)
    }

    pub async fn reset(&self, subject: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM auth_failures WHERE kind = $1 AND subject = $2")
            .bind(self.kind)
            .bind(subject)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }
}

/// Deletes the rows whose window has ended (of every kind).
pub async fn purge_expired(pool: &Db) -> Result<u64, sqlx::Error> {
    sqlx::query("DELETE FROM auth_failures WHERE window_ends <= now()")
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
}
