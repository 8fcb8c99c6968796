//! A receiver's `Retry-After` (on 429 and 503), honoured within bounds: whatever it says, the
//! next attempt comes no sooner than [`MIN`] and no later than [`MAX`] from now, so a receiver
//! can neither make the gateway hammer it nor park a delivery for months.

use actix_web::http::header::HttpDate;
use std::time::{Duration, SystemTime};

pub const MIN: Duration = Duration::from_secs(1);
pub const MAX: Duration = Duration::from_secs(3600);

/// The wait a `Retry-After` value asks for, bounded: delay-seconds (RFC 9110: digits only; a
/// number too large to read is the longest wait) or an HTTP date. `None` for anything else
/// (a negative number, a fraction, garbage), which leaves the retry policy's own wait.
pub fn parse(raw: &str, now: SystemTime) -> Option<Duration> {
    let raw = raw.trim();
    let wait = if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(raw.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at: SystemTime = raw.parse::<HttpDate>().ok()?.into();
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.clamp(MIN, MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(raw: &str) -> Option<u64> {
        parse(raw, SystemTime::now()).map(|d| d.as_secs())
    }

    #[test]
    fn seconds_and_dates_are_read_and_bounded() {
        assert_eq!(at("2"), Some(2));
        assert_eq!(at(" 120 "), Some(120));
        assert_eq!(at("0"), Some(1), "never sooner than a second");
        assert_eq!(at("999999999"), Some(3600), "never later than an hour");
        assert_eq!(at("99999999999999999999999999"), Some(3600));
        assert_eq!(at("Fri, 31 Dec 9999 23:59:59 GMT"), Some(3600));
        assert_eq!(at("Thu, 01 Jan 1970 00:00:00 GMT"), Some(1));
        let soon = SystemTime::now() + Duration::from_secs(30);
        let wait = at(&HttpDate::from(soon).to_string()).unwrap();
        assert!((28..=30).contains(&wait), "{wait}");
    }

    #[test]
    fn anything_else_leaves_the_policy() {
        for raw in ["-5", "1.5", "", "soon", "1e9", "+3"] {
            assert_eq!(at(raw), None, "{raw}");
        }
    }
}
