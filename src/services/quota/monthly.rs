//! Monthly quotas, exact across replicas and cheap on the hot path.
//!
//! A replica reserves quota from PostgreSQL in blocks (leases) with one conditional
//! statement, then spends them from an in-memory counter. Blocks shrink to one as the month's
//! allowance runs out, so the replicas together never take more than the allowance. What a
//! replica holds unspent is handed back at shutdown; a replica that dies loses it (it counts
//! as spent, never as free), which bounds the loss by one block and keeps the limit exact.
//!
//! While the allowance is plentiful (the last block was a full one), the next block is
//! reserved in the background when a quarter of the current one is left, so calls do not
//! wait for the database; near the limit blocks shrink and are reserved only when needed.

use crate::db::Db;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

/// Why a monthly quota refused.
#[derive(Debug)]
pub enum MonthlyRefusal {
    Exhausted,
    /// No lease left and the database cannot be reached to get one.
    Unavailable(sqlx::Error),
}

#[derive(Default)]
struct Lease {
    /// The limit this lease was reserved under; a different one (the admin changed the
    /// quota) retires the lease so the next reservation counts against the new limit.
    limit: AtomicI64,
    /// Quota held by this replica, not yet spent.
    available: AtomicI64,
    /// The allowance (limit + bonus) and what all replicas had taken, as of our last lease.
    allowance: AtomicI64,
    leased: AtomicI64,
    /// One refill at a time per subject and month on this replica.
    refill: tokio::sync::Mutex<()>,
    /// The size of the last block granted, and whether a background refill is under way.
    last_block: AtomicI64,
    prefetching: AtomicBool,
}

impl Lease {
    fn try_take(&self) -> bool {
        self.available
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n > 0).then(|| n - 1)
            })
            .is_ok()
    }
}

/// What the headers report: the allowance and an estimate of what is left of it.
#[derive(Debug, Clone, Copy)]
pub struct MonthlyStanding {
    pub allowance: i64,
    pub remaining: i64,
}

pub struct MonthlyQuotas {
    pool: Db,
    /// Largest block a replica reserves at once.
    max_block: i64,
    leases: Mutex<Leases>,
}

/// The leases per month and subject, and the latest month seen: leases of earlier months are
/// handed back and dropped once a later month has begun, so the map holds one month's worth.
/// Keyed month first so that a lookup borrows both names: only a new lease allocates.
#[derive(Default)]
struct Leases {
    latest_month: String,
    by_month: HashMap<String, HashMap<String, Arc<Lease>>>,
}

type Held = Vec<((String, String), Arc<Lease>)>;

impl Leases {
    fn get(&self, subject: &str, month: &str) -> Option<&Arc<Lease>> {
        self.by_month.get(month)?.get(subject)
    }

    /// The lease's place in the map, a fresh lease put there the first time.
    fn slot(&mut self, subject: &str, month: &str) -> &mut Arc<Lease> {
        if !self.by_month.contains_key(month) {
            self.by_month.insert(month.to_owned(), HashMap::new());
        }
        let subjects = self.by_month.get_mut(month).expect("inserted above");
        if !subjects.contains_key(subject) {
            subjects.insert(subject.to_owned(), Arc::default());
        }
        subjects.get_mut(subject).expect("inserted above")
    }

    /// Notes `month`; when it is later than any seen, takes out every lease of earlier months.
    fn begin(&mut self, month: &str) -> Held {
        if month <= self.latest_month.as_str() {
            return Vec::new();
        }
        self.latest_month = month.to_owned();
        let past: Vec<String> = self
            .by_month
            .keys()
            .filter(|m| m.as_str() < month)
            .cloned()
            .collect();
        let taken: Vec<_> = past
            .into_iter()
            .filter_map(|m| self.by_month.remove_entry(&m))
            .collect();
        flatten(taken)
    }

    /// Every lease, taken out of the map.
    fn drain(&mut self) -> Held {
        flatten(self.by_month.drain())
    }
}

/// Leases taken out of the map, each with its (subject, month).
fn flatten(months: impl IntoIterator<Item = (String, HashMap<String, Arc<Lease>>)>) -> Held {
    months
        .into_iter()
        .flat_map(|(month, subjects)| {
            subjects
                .into_iter()
                .map(move |(subject, lease)| ((subject, month.clone()), lease))
        })
        .collect()
}

impl MonthlyQuotas {
    pub fn new(pool: Db, max_block: i64) -> Self {
        Self {
            pool,
            max_block: max_block.max(1),
            leases: Mutex::default(),
        }
    }

    /// The lease, if this replica holds one (reading never creates one).
    fn existing(&self, subject: &str, month: &str) -> Option<Arc<Lease>> {
        let leases = self.leases.lock().expect("lease map poisoned");
        leases.get(subject, month).cloned()
    }

    /// The lease for `limit`, retiring (and handing back) one reserved under another limit.
    async fn lease_under(&self, subject: &str, month: &str, limit: i64) -> Arc<Lease> {
        let (current, retired, past) = {
            let mut leases = self.leases.lock().expect("lease map poisoned");
            let past = leases.begin(month);
            let slot = leases.slot(subject, month);
            let retired =
                match slot
                    .limit
                    .compare_exchange(0, limit, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => None,
                    Err(l) if l == limit => None,
                    Err(_) => {
                        let fresh = Arc::new(Lease::default());
                        fresh.limit.store(limit, Ordering::Release);
                        Some(std::mem::replace(slot, fresh))
                    }
                };
            (slot.clone(), retired, past)
        };
        if let Some(old) = retired {
            hand_back(&self.pool, subject, month, &old).await;
        }
        for ((past_subject, past_month), lease) in past {
            hand_back(&self.pool, &past_subject, &past_month, &lease).await;
        }
        current
    }

    /// Takes one call's worth of `subject`'s quota for `month`, within `limit` (plus bonus).
    pub async fn take(&self, subject: &str, month: &str, limit: i64) -> Result<(), MonthlyRefusal> {
        let lease = self.lease_under(subject, month, limit).await;
        if lease.try_take() {
            self.prefetch_if_low(&lease, subject, month, limit);
            return Ok(());
        }
        let _refilling = lease.refill.lock().await;
        // Another request may have refilled while we waited.
        if lease.try_take() {
            return Ok(());
        }
        let granted = reserve(&self.pool, self.max_block, subject, month, limit, &lease)
            .await
            .map_err(MonthlyRefusal::Unavailable)?;
        if granted == 0 {
            return Err(MonthlyRefusal::Exhausted);
        }
        // One of the block is this call's.
        lease.available.fetch_add(granted - 1, Ordering::AcqRel);
        Ok(())
    }

    /// Reserves the next full block in the background when a quarter of the last is left.
    fn prefetch_if_low(&self, lease: &Arc<Lease>, subject: &str, month: &str, limit: i64) {
        let full = lease.last_block.load(Ordering::Acquire) == self.max_block;
        if !full
            || lease.available.load(Ordering::Acquire) > self.max_block / 4
            || lease.prefetching.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let (pool, max_block, lease) = (self.pool.clone(), self.max_block, lease.clone());
        let (subject, month) = (subject.to_owned(), month.to_owned());
        tokio::spawn(async move {
            {
                let _refilling = lease.refill.lock().await;
                if lease.available.load(Ordering::Acquire) <= max_block / 4 {
                    match reserve(&pool, max_block, &subject, &month, limit, &lease).await {
                        Ok(granted) => {
                            lease.available.fetch_add(granted, Ordering::AcqRel);
                        }
                        Err(e) => tracing::warn!(subject, "reserving monthly quota ahead: {e}"),
                    }
                }
            }
            lease.prefetching.store(false, Ordering::Release);
        });
    }

    /// Undoes a `take` whose call was refused by another limit or never sent.
    pub fn give_back(&self, subject: &str, month: &str) {
        // A lease already handed back (its month is over) takes nothing back.
        if let Some(lease) = self.existing(subject, month) {
            lease.available.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The allowance and what is left of it, as far as this replica knows.
    pub fn standing(&self, subject: &str, month: &str, limit: i64) -> MonthlyStanding {
        let lease = self.existing(subject, month).unwrap_or_default();
        let leased = lease.leased.load(Ordering::Acquire);
        let allowance = match lease.allowance.load(Ordering::Acquire) {
            0 if leased == 0 => limit,
            a => a.max(limit),
        };
        let available = lease.available.load(Ordering::Acquire);
        MonthlyStanding {
            allowance,
            remaining: (allowance - leased + available).max(0),
        }
    }

    /// What this replica holds unspent for `subject` and `month`.
    pub fn held(&self, subject: &str, month: &str) -> i64 {
        self.existing(subject, month)
            .map_or(0, |l| l.available.load(Ordering::Acquire))
    }

    /// Hands every unspent lease back (graceful shutdown).
    pub async fn return_all(&self) {
        let held = self.leases.lock().expect("lease map poisoned").drain();
        for ((subject, month), lease) in held {
            hand_back(&self.pool, &subject, &month, &lease).await;
        }
    }
}

/// The most either term of an allowance (limit, bonus) counts for: 10^15, three orders
/// beyond the largest tenant quota, so their sum stays far inside bigint.
const ALLOWANCE_TERM_CEILING: i64 = 1_000_000_000_000_000;

/// Reserves a block: at most `max_block`, a quarter of what is left when that is smaller,
/// and never less than one while anything is left.
async fn reserve(
    pool: &Db,
    max_block: i64,
    subject: &str,
    month: &str,
    limit: i64,
    lease: &Lease,
) -> Result<i64, sqlx::Error> {
    // The month's row exists after its first reservation: one statement then. The row
    // lock of the UPDATE orders replicas, so the sum of blocks never exceeds the allowance.
    // Both terms of the allowance are capped, so `limit + bonus` can never overflow bigint
    // (an overflow would make every call of the subject answer 503).
    let limit = limit.clamp(0, ALLOWANCE_TERM_CEILING);
    let reserve = || {
        sqlx::query!(
            r#"WITH current AS (
                 SELECT leased, $3::bigint + LEAST(bonus, $5::bigint) AS allowance
                   FROM quota_months WHERE subject = $1 AND month = $2 FOR UPDATE
             ), block AS (
                 SELECT CASE WHEN leased < allowance
                             THEN LEAST($4::bigint, GREATEST((allowance - leased) / 4, 1))
                             ELSE 0 END AS n,
                        allowance
                 FROM current
             )
             UPDATE quota_months q SET leased = q.leased + block.n
             FROM block WHERE q.subject = $1 AND q.month = $2
             RETURNING block.n AS "granted!", q.leased, block.allowance AS "allowance!""#,
            subject,
            month,
            limit,
            max_block,
            ALLOWANCE_TERM_CEILING
        )
        .fetch_optional(pool)
    };
    let row = match reserve().await? {
        Some(row) => row,
        None => {
            sqlx::query!(
                "INSERT INTO quota_months (subject, month) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                subject,
                month
            )
            .execute(pool)
            .await?;
            reserve().await?.ok_or(sqlx::Error::RowNotFound)?
        }
    };
    let (granted, leased, allowance) = (row.granted, row.leased, row.allowance);
    lease.leased.store(leased, Ordering::Release);
    lease.allowance.store(allowance, Ordering::Release);
    lease.last_block.store(granted, Ordering::Release);
    Ok(granted)
}

/// Returns what `lease` holds unspent to the month's row.
async fn hand_back(pool: &Db, subject: &str, month: &str, lease: &Lease) {
    let unspent = lease.available.swap(0, Ordering::AcqRel);
    if unspent <= 0 {
        return;
    }
    let returned = sqlx::query!(
        "UPDATE quota_months SET leased = leased - $3 WHERE subject = $1 AND month = $2",
        subject,
        month,
        unspent
    )
    .execute(pool)
    .await;
    if let Err(e) = returned {
        tracing::warn!(
            subject,
            month,
            unspent,
            "could not hand back an unspent lease (it stays spent): {e}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_month_takes_out_the_leases_of_earlier_months() {
        let mut leases = Leases::default();
        assert!(leases.begin("2026-11").is_empty());
        for subject in ["a", "b"] {
            leases.slot(subject, "2026-11");
        }
        assert!(
            leases.begin("2026-11").is_empty(),
            "same month: nothing goes"
        );
        let past = leases.begin("2026-12");
        assert_eq!(past.len(), 2);
        assert!(leases.by_month.is_empty());
        assert!(
            leases.begin("2026-11").is_empty(),
            "an earlier month never evicts"
        );
    }
}
