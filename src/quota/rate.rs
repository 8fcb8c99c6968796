//! Per-second limits as GCRA (the generic cell rate algorithm) kept in PostgreSQL, so every
//! replica shares one bucket per subject, decided by one conditional statement on the
//! database's clock. Smooth at `rate` per second with a burst equal to the rate: no one-second
//! window admits more than rate plus burst.

use crate::db::Db;

pub enum RateDecision {
    /// Admitted; about this many more would be admitted right now.
    Admitted { remaining: u32 },
    /// Refused; whole seconds until a call would be admitted (at least 1).
    Refused { retry_after: u64 },
}

pub struct RateLimits {
    pool: Db,
}

impl RateLimits {
    pub fn new(pool: Db) -> Self {
        Self { pool }
    }

    pub async fn check(&self, subject: &str, rate: u32) -> Result<RateDecision, sqlx::Error> {
        let interval_us = emission_interval_us(rate);
        // Burst equal to the rate: the bucket tolerates one second of arrivals ahead of time.
        let tolerance_us: i64 = 1_000_000;
        let admitted: Option<f64> = sqlx::query_scalar(
            "INSERT INTO quota_rate AS r (subject, tat)
                  VALUES ($1, statement_timestamp() + make_interval(secs => $2::double precision / 1e6))
             ON CONFLICT (subject) DO UPDATE
                SET tat = GREATEST(r.tat, statement_timestamp()) + make_interval(secs => $2::double precision / 1e6)
              WHERE GREATEST(r.tat, statement_timestamp()) + make_interval(secs => ($2 - $3)::double precision / 1e6)
                    <= statement_timestamp()
             RETURNING EXTRACT(EPOCH FROM (tat - statement_timestamp()))::double precision",
        )
        .bind(subject)
        .bind(interval_us)
        .bind(tolerance_us)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(ahead_secs) = admitted {
            // The bucket is `ahead_secs` of its one-second tolerance full.
            let free = ((1.0 - ahead_secs).max(0.0) * f64::from(rate)).floor() as u32;
            return Ok(RateDecision::Admitted {
                remaining: free.min(rate),
            });
        }
        // When the next call conforms: tat + interval - tolerance.
        let wait_secs: f64 = sqlx::query_scalar(
            "SELECT GREATEST(EXTRACT(EPOCH FROM (tat - statement_timestamp()))::double precision + ($2 - $3)::double precision / 1e6, 0)
             FROM quota_rate WHERE subject = $1",
        )
        .bind(subject)
        .bind(interval_us)
        .bind(tolerance_us)
        .fetch_optional(&self.pool)
        .await?
        .unwrap_or(1.0);
        Ok(RateDecision::Refused {
            retry_after: (wait_secs.ceil() as u64).max(1),
        })
    }

    /// Undoes an admission whose call was refused by another limit (all-or-nothing).
    pub async fn give_back(&self, subject: &str, rate: u32) {
        let undone = sqlx::query(
            "UPDATE quota_rate SET tat = tat - make_interval(secs => $2::double precision / 1e6) WHERE subject = $1",
        )
        .bind(subject)
        .bind(emission_interval_us(rate))
        .execute(&self.pool)
        .await;
        if let Err(e) = undone {
            tracing::warn!(subject, "could not give back a rate-limit admission: {e}");
        }
    }
}

fn emission_interval_us(rate: u32) -> i64 {
    1_000_000 / i64::from(rate.max(1))
}
