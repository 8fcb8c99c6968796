//! Counting failures (admin logins, wrong key secrets) so guessing is slowed, then refused.
//!
//! Counts live in PostgreSQL, one row per subject, updated by one conditional statement: every
//! replica sees the same count, so spreading guesses over replicas gains nothing. The window
//! runs from a subject's first failure; rows whose window ended are purged in the background.
//!
//! An attempt is reserved (counted as a failure) *before* its credential is checked and given
//! back when it verifies, so concurrent guesses cannot all pass a check made before any of
//! them failed. Subjects pair the credential with the client's address: other people's
//! failures never use up the owner's attempts.

use crate::db::Db;
use moka::sync::Cache;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// What a reservation found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The attempt may go ahead; it is counted until given back.
    Admitted,
    /// The subject used up its failures: whole seconds until the window ends.
    Refused { retry_after: u64 },
}

pub struct FailureLimiter {
    pool: Db,
    /// Which count this is (`login_user`, `login_addr`, `key`): subjects of different kinds
    /// never share a row.
    kind: &'static str,
    /// Failures after which attempts are refused until the window passes.
    pub limit: u32,
    pub window: Duration,
    /// Subjects this replica saw refused, until when: a refused guesser's further attempts
    /// cost no database round trip. (A refused subject cannot succeed before its window
    /// ends, so nothing here can go stale in the subject's favour or against it.)
    refused: Cache<String, Instant>,
}

impl FailureLimiter {
    pub fn new(pool: Db, kind: &'static str, limit: u32, window: Duration) -> Self {
        Self {
            pool,
            kind,
            limit,
            window,
            refused: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(window)
                .build(),
        }
    }

    /// Counts one attempt unless `subject` has used up its failures (one statement, so
    /// concurrent attempts can never all pass).
    pub async fn reserve(&self, subject: &str) -> Result<Reservation, sqlx::Error> {
        if let Some(until) = self.refused.get(subject) {
            let left = until.saturating_duration_since(Instant::now());
            if !left.is_zero() {
                let retry_after = (left.as_secs_f64().ceil() as u64).max(1);
                return Ok(Reservation::Refused { retry_after });
            }
        }
        let admitted = self.count(subject, self.limit).await?;
        if admitted.is_some() {
            return Ok(Reservation::Admitted);
        }
        // The window may have ended since: then one second is the honest wait.
        let retry_after = self.refusal(subject).await?.unwrap_or(1);
        let until = Instant::now() + Duration::from_secs(retry_after);
        self.refused.insert(subject.to_owned(), until);
        Ok(Reservation::Refused { retry_after })
    }

    /// Gives back a reserved attempt that was never checked (the check could not run).
    pub async fn release(&self, subject: &str) -> Result<(), sqlx::Error> {
        sqlx::query!(
            "UPDATE auth_failures SET failures = failures - 1
              WHERE kind = $1 AND subject = $2 AND failures > 0",
            self.kind,
            subject
        )
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    /// The failures counted for `subject` in its current window.
    pub async fn failures(&self, subject: &str) -> Result<u32, sqlx::Error> {
        let failures = sqlx::query_scalar!(
            "SELECT failures FROM auth_failures
              WHERE kind = $1 AND subject = $2 AND window_ends > now()",
            self.kind,
            subject
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(failures.unwrap_or(0).max(0) as u32)
    }

    /// Whole seconds until `subject` may try again, when it has used up its failures.
    pub async fn refusal(&self, subject: &str) -> Result<Option<u64>, sqlx::Error> {
        let wait = sqlx::query_scalar!(
            r#"SELECT EXTRACT(EPOCH FROM (window_ends - now()))::double precision AS "wait!"
                 FROM auth_failures
                WHERE kind = $1 AND subject = $2 AND failures >= $3 AND window_ends > now()"#,
            self.kind,
            subject,
            self.limit as i32
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(wait.map(|secs| (secs.ceil() as u64).max(1)))
    }

    /// Counts one failure whatever the limit; returns the failures in the current window, this
    /// one included.
    pub async fn record_failure(&self, subject: &str) -> Result<u32, sqlx::Error> {
        let failures = self.count(subject, u32::MAX).await?.unwrap_or(0);
        Ok(failures.max(0) as u32)
    }

    /// The one counting statement: one more attempt in the subject's window (a new window when
    /// the last has ended), unless `limit` attempts are already counted in it. `None`: refused.
    async fn count(&self, subject: &str, limit: u32) -> Result<Option<i32>, sqlx::Error> {
        sqlx::query_scalar!(
            "INSERT INTO auth_failures AS f (kind, subject, failures, window_ends)
                  VALUES ($1, $2, 1, now() + make_interval(secs => $3))
             ON CONFLICT (kind, subject) DO UPDATE
                SET failures = CASE WHEN f.window_ends > now() THEN f.failures + 1 ELSE 1 END,
                    window_ends = CASE WHEN f.window_ends > now() THEN f.window_ends
                                       ELSE now() + make_interval(secs => $3) END
              WHERE f.window_ends <= now() OR f.failures < $4::bigint
             RETURNING failures",
            self.kind,
            subject,
            self.window.as_secs_f64(),
            i64::from(limit)
        )
        .fetch_optional(&self.pool)
        .await
    }

    pub async fn reset(&self, subject: &str) -> Result<(), sqlx::Error> {
        self.refused.invalidate(subject);
        sqlx::query!(
            "DELETE FROM auth_failures WHERE kind = $1 AND subject = $2",
            self.kind,
            subject
        )
        .execute(&self.pool)
        .await
        .map(|_| ())
    }
}

/// One credential check in flight per subject (a key id, a username): concurrent attempts
/// wait for the one before them, so a burst cannot run argon2id many times at once.
pub struct InFlight {
    locks: Cache<String, Arc<Mutex<()>>>,
}

impl Default for InFlight {
    fn default() -> Self {
        Self {
            // Idle locks go; a lock is only evicted early under a flood of distinct subjects,
            // where the database reservation still bounds the attempts.
            locks: Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(60))
                .build(),
        }
    }
}

impl InFlight {
    /// Waits for the subject's turn; the turn lasts as long as the guard.
    pub async fn turn(&self, subject: &str) -> OwnedMutexGuard<()> {
        let lock = self.locks.get_with_by_ref(subject, Default::default);
        lock.lock_owned().await
    }
}

/// The subject of a (credential, client address) pair.
pub fn pair(credential: &str, client: &str) -> String {
    format!("{credential} {client}")
}

/// Deletes the rows whose window has ended (of every kind).
pub async fn purge_expired(pool: &Db) -> Result<u64, sqlx::Error> {
    sqlx::query!("DELETE FROM auth_failures WHERE window_ends <= now()")
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
}
