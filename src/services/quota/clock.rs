//! The time quotas are counted in. Injectable, so a test can cross a month boundary.

use chrono::{DateTime, Datelike, TimeZone, Utc};
use std::sync::atomic::{AtomicI64, Ordering};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The system clock shifted by an adjustable offset (tests).
#[derive(Default)]
pub struct OffsetClock {
    offset_ms: AtomicI64,
}

impl OffsetClock {
    pub fn set_offset(&self, offset: chrono::Duration) {
        self.offset_ms
            .store(offset.num_milliseconds(), Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }
}

/// A calendar month (UTC) as `YYYY-MM`, held inline rather than in a `String`: every admission
/// names one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MonthKey([u8; 7]);

impl MonthKey {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a month key is ASCII digits and a dash")
    }
}

/// The calendar month (UTC) `at` falls in. A clock outside years 0-9999 is clamped to them,
/// which keeps the key seven characters.
pub fn month_key(at: DateTime<Utc>) -> MonthKey {
    let year = at.year().clamp(0, 9999).unsigned_abs();
    let digit = |n: u32| b'0' + (n % 10) as u8;
    let month = at.month();
    MonthKey([
        digit(year / 1000),
        digit(year / 100),
        digit(year / 10),
        digit(year),
        b'-',
        digit(month / 10),
        digit(month),
    ])
}

/// The first instant of the month after the one `at` falls in.
pub fn next_month_start(at: DateTime<Utc>) -> DateTime<Utc> {
    let (year, month) = if at.month() == 12 {
        (at.year() + 1, 1)
    } else {
        (at.year(), at.month() + 1)
    };
    Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0)
        .single()
        .expect("valid month start")
}

/// Whole seconds until the month resets, at least 1.
pub fn seconds_to_month_end(at: DateTime<Utc>) -> u64 {
    let secs = (next_month_start(at) - at).num_milliseconds().max(0) as u64;
    secs.div_ceil(1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_roll_over_in_utc() {
        let dec = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap();
        assert_eq!(month_key(dec).as_str(), "2026-12");
        assert_eq!(
            next_month_start(dec),
            Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(seconds_to_month_end(dec), 1);
        let feb = Utc.with_ymd_and_hms(2028, 2, 28, 0, 0, 0).unwrap();
        assert_eq!(seconds_to_month_end(feb), 2 * 86400, "2028 is a leap year");
    }
}
