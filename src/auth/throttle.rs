//! Counting failures (admin logins, wrong key secrets) so guessing is slowed, then refused.
//!
//! Counts live in this replica's memory: an attacker spreading guesses over N replicas gets
//! N times the budget, which still keeps argon2id and guessing bounded.

use moka::sync::Cache;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub struct FailureLimiter {
    counts: Cache<String, Arc<AtomicU32>>,
    /// Failures after which attempts are refused until the window passes.
    pub limit: u32,
    pub window: Duration,
}

impl FailureLimiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            // The window runs from the first failure: the entry expires with it.
            counts: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(window)
                .build(),
            limit,
            window,
        }
    }

    pub fn failures(&self, subject: &str) -> u32 {
        self.counts
            .get(subject)
            .map_or(0, |n| n.load(Ordering::Relaxed))
    }

    pub fn is_limited(&self, subject: &str) -> bool {
        self.failures(subject) >= self.limit
    }

    pub fn record_failure(&self, subject: &str) -> u32 {
        self.counts
            .get_with(subject.to_owned(), || Arc::new(AtomicU32::new(0)))
            .fetch_add(1, Ordering::Relaxed)
            + 1
    }

    pub fn reset(&self, subject: &str) {
        self.counts.invalidate(subject);
    }
}
