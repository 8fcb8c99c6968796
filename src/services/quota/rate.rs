//! Per-second limits as GCRA (the generic cell rate algorithm) kept in PostgreSQL, so every
//! replica shares one bucket per subject, decided by one conditional statement on the
//! database's clock. Smooth at `rate` per second with a burst equal to the rate: no one-second
//! window admits more than rate plus burst.
//!
//! One database round-trip per call would serialise every call of a tenant on its bucket's
//! row. So a replica reserves cells in blocks (up to `MAX_BLOCK`, sized to what the rate
//! emits in `LEASE_LIFETIME`) and spends them from memory for at most `LEASE_LIFETIME`; what
//! is left then is dropped and counts as spent. Cells reserved at `g` are spent in
//! `[g, g + L)`, so any window of length `W` admits at most what the database granted in a
//! window of `W + L`; the database's tolerance is lowered by `L` to keep that within the
//! same bound as reserving one cell per call. Rates too low to fill a block of two in `L`
//! reserve one cell per call, spent at once, with the full tolerance.

use crate::db::Db;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a reserved block may be spent from.
const LEASE_LIFETIME: Duration = Duration::from_millis(100);
/// The largest block reserved at once.
const MAX_BLOCK: u32 = 100;
/// A burst equal to the rate: the bucket tolerates one second of arrivals ahead of time.
const TOLERANCE_US: i64 = 1_000_000;

pub enum RateDecision {
    /// Admitted; about this many more would be admitted right now.
    Admitted { remaining: u32 },
    /// Refused; whole seconds until a call would be admitted (at least 1).
    Refused { retry_after: u64 },
}

/// Cells this replica reserved for one subject.
#[derive(Default)]
struct Block {
    cells: Mutex<Cells>,
    /// One reservation at a time per subject on this replica; the others wait and share it.
    refill: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Cells {
    left: u32,
    /// The rate they were reserved at: a changed rate drops them.
    rate: u32,
    usable_until: Option<Instant>,
    /// The bucket's free cells as of the reservation, for the `RateLimit` header.
    free: u32,
}

impl Block {
    fn try_take(&self, rate: u32) -> Option<u32> {
        let mut cells = self.cells.lock().expect("rate block poisoned");
        let usable = cells.rate == rate && cells.usable_until.is_some_and(|t| Instant::now() < t);
        if !usable || cells.left == 0 {
            return None;
        }
        cells.left -= 1;
        Some((cells.left + cells.free).min(rate))
    }

    /// Returns a cell taken by a call that another limit then refused.
    fn put_back(&self, rate: u32) -> bool {
        let mut cells = self.cells.lock().expect("rate block poisoned");
        let usable = cells.rate == rate && cells.usable_until.is_some_and(|t| Instant::now() < t);
        if usable {
            cells.left += 1;
        }
        usable
    }
}

/// The plan for one rate: how many cells to reserve at once, and the tolerance that keeps
/// the one-second bound with blocks spent for up to `LEASE_LIFETIME`.
struct Reservation {
    interval_us: i64,
    block: u32,
    tolerance_us: i64,
}

impl Reservation {
    fn for_rate(rate: u32) -> Self {
        let interval_us = 1_000_000 / i64::from(rate.max(1));
        let per_lifetime = (u128::from(rate) * LEASE_LIFETIME.as_micros() / 1_000_000) as u32;
        if per_lifetime >= 2 {
            Self {
                interval_us,
                block: per_lifetime.min(MAX_BLOCK),
                tolerance_us: TOLERANCE_US - LEASE_LIFETIME.as_micros() as i64,
            }
        } else {
            Self {
                interval_us,
                block: 1,
                tolerance_us: TOLERANCE_US,
            }
        }
    }
}

pub struct RateLimits {
    pool: Db,
    blocks: Mutex<HashMap<String, Arc<Block>>>,
}

impl RateLimits {
    pub fn new(pool: Db) -> Self {
        Self {
            pool,
            blocks: Mutex::default(),
        }
    }

    fn block(&self, subject: &str) -> Arc<Block> {
        let mut blocks = self.blocks.lock().expect("rate blocks poisoned");
        if let Some(block) = blocks.get(subject) {
            return block.clone();
        }
        blocks.entry(subject.to_owned()).or_default().clone()
    }

    pub async fn check(&self, subject: &str, rate: u32) -> Result<RateDecision, sqlx::Error> {
        let block = self.block(subject);
        if let Some(remaining) = block.try_take(rate) {
            return Ok(RateDecision::Admitted { remaining });
        }
        let _refilling = block.refill.lock().await;
        // Another call may have reserved while we waited.
        if let Some(remaining) = block.try_take(rate) {
            return Ok(RateDecision::Admitted { remaining });
        }
        let plan = Reservation::for_rate(rate);
        // The lifetime counts from before the request: the grant happens after it is sent.
        let asked_at = Instant::now();
        match self.reserve(subject, &plan).await? {
            Some((granted, ahead_secs)) => {
                // The bucket is `ahead_secs` of its tolerance full.
                let tolerance_secs = plan.tolerance_us as f64 / 1e6;
                let free = ((tolerance_secs - ahead_secs).max(0.0) * f64::from(rate)) as u32;
                let mut cells = block.cells.lock().expect("rate block poisoned");
                *cells = Cells {
                    left: granted - 1,
                    rate,
                    usable_until: Some(asked_at + LEASE_LIFETIME),
                    free,
                };
                Ok(RateDecision::Admitted {
                    remaining: (cells.left + free).min(rate),
                })
            }
            None => Ok(RateDecision::Refused {
                retry_after: self.wait_secs(subject, &plan).await?,
            }),
        }
    }

    /// Reserves up to `plan.block` conforming cells in one conditional statement: the number
    /// granted and how far ahead of now the bucket then is, or `None` when no cell conforms.
    async fn reserve(
        &self,
        subject: &str,
        plan: &Reservation,
    ) -> Result<Option<(u32, f64)>, sqlx::Error> {
        // Cells conforming at `base` (the later of the bucket's tat and now): while
        // base + k * interval - tolerance <= now, capped at the block.
        let row = sqlx::query!(
            r#"INSERT INTO quota_rate AS r (subject, tat, granted)
                  VALUES ($1,
                          statement_timestamp() + make_interval(secs => $2::double precision * LEAST($4::double precision, floor($3::double precision / $2)) / 1e6),
                          LEAST($4, floor($3::double precision / $2))::int)
             ON CONFLICT (subject) DO UPDATE
                SET granted = LEAST($4, floor(($3 - EXTRACT(EPOCH FROM (GREATEST(r.tat, statement_timestamp()) - statement_timestamp())) * 1e6) / $2))::int,
                    tat = GREATEST(r.tat, statement_timestamp())
                          + make_interval(secs => $2::double precision
                                * LEAST($4, floor(($3 - EXTRACT(EPOCH FROM (GREATEST(r.tat, statement_timestamp()) - statement_timestamp())) * 1e6) / $2))
                                / 1e6)
              WHERE LEAST($4, floor(($3 - EXTRACT(EPOCH FROM (GREATEST(r.tat, statement_timestamp()) - statement_timestamp())) * 1e6) / $2)) >= 1
             RETURNING granted, EXTRACT(EPOCH FROM (tat - statement_timestamp()))::double precision AS "ahead!""#,
            subject,
            plan.interval_us as f64,
            plan.tolerance_us as f64,
            f64::from(plan.block)
        )
        .fetch_optional(&self.pool)
        .await?
        .map(|row| (row.granted, row.ahead));
        Ok(row
            .filter(|(granted, _)| *granted >= 1)
            .map(|(granted, ahead)| (granted as u32, ahead)))
    }

    /// Whole seconds until one cell conforms: tat + interval - tolerance.
    async fn wait_secs(&self, subject: &str, plan: &Reservation) -> Result<u64, sqlx::Error> {
        let wait_secs = sqlx::query_scalar!(
            r#"SELECT GREATEST(EXTRACT(EPOCH FROM (tat - statement_timestamp()))::double precision
                              + ($2::bigint - $3::bigint)::double precision / 1e6, 0) AS "wait!"
                 FROM quota_rate WHERE subject = $1"#,
            subject,
            plan.interval_us,
            plan.tolerance_us
        )
        .fetch_optional(&self.pool)
        .await?
        .unwrap_or(1.0);
        Ok((wait_secs.ceil() as u64).max(1))
    }

    /// Undoes an admission whose call was refused by another limit (all-or-nothing): back
    /// into this replica's block while it is usable, else into the database's bucket.
    pub async fn give_back(&self, subject: &str, rate: u32) {
        if self.block(subject).put_back(rate) {
            return;
        }
        let undone = sqlx::query!(
            "UPDATE quota_rate SET tat = tat - make_interval(secs => $2::double precision / 1e6)
              WHERE subject = $1",
            subject,
            Reservation::for_rate(rate).interval_us as f64
        )
        .execute(&self.pool)
        .await;
        if let Err(e) = undone {
            tracing::warn!(subject, "could not give back a rate-limit admission: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_rates_reserve_one_cell_with_the_full_tolerance() {
        for rate in [1, 5, 19] {
            let plan = Reservation::for_rate(rate);
            assert_eq!(plan.block, 1, "rate {rate}");
            assert_eq!(plan.tolerance_us, TOLERANCE_US);
        }
    }

    #[test]
    fn higher_rates_reserve_what_the_lifetime_emits_with_a_lowered_tolerance() {
        let plan = Reservation::for_rate(50);
        assert_eq!(plan.block, 5);
        assert_eq!(plan.tolerance_us, 900_000);
        assert_eq!(Reservation::for_rate(1_000_000).block, MAX_BLOCK);
        // The lowered tolerance still lets the first cell of a fresh bucket conform.
        assert!(Reservation::for_rate(20).tolerance_us >= Reservation::for_rate(20).interval_us);
    }

    #[test]
    fn a_block_is_spent_only_at_its_rate_and_within_its_lifetime() {
        let block = Block::default();
        *block.cells.lock().unwrap() = Cells {
            left: 2,
            rate: 50,
            usable_until: Some(Instant::now() + Duration::from_secs(60)),
            free: 0,
        };
        assert_eq!(block.try_take(40), None, "another rate drops the block");
        assert_eq!(block.try_take(50), Some(1));
        assert_eq!(block.try_take(50), Some(0));
        assert_eq!(block.try_take(50), None);
        assert!(block.put_back(50));
        assert_eq!(block.try_take(50), Some(0));
        block.cells.lock().unwrap().usable_until = Some(Instant::now());
        assert!(!block.put_back(50), "an expired block takes nothing back");
    }
}
