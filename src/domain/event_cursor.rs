//! Where a reader is in a tenant's event log: opaque to clients (`<xid>_<seq>`), ordered as
//! the log is, by the transaction that wrote an event and then within that transaction
//! (`migrations/0017_event_log.sql` says why a sequence alone would lose events).

use crate::domain::Invalid;
use std::fmt;

/// A position in the log: every event at or before it has been read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventCursor {
    /// The writing transaction's id (`xid8`).
    pub xid: u64,
    /// The event's place among those of its transaction (and of the whole log).
    pub seq: i64,
}

/// The longest text a cursor has: two 20-digit numbers and the separator.
const MAX_LEN: usize = 41;

impl EventCursor {
    /// Before the first event of the log.
    pub const START: Self = Self { xid: 0, seq: 0 };

    /// After every event of transactions older than `xid`, before any of `xid`'s own (their
    /// `seq` is at least 1).
    pub fn before_transaction(xid: u64) -> Self {
        Self { xid, seq: 0 }
    }

    /// A cursor this gateway gave out; `field` names where it came from (`after`,
    /// `Last-Event-ID`), for the error.
    pub fn parse(raw: &str, field: &'static str) -> Result<Self, Invalid> {
        let invalid = || {
            Invalid::new(
                field,
                format!(
                    "{field} must be a cursor this gateway gave out (an event's `cursor`, \
                     or `next` of GET /v1/events)"
                ),
            )
        };
        if raw.len() > MAX_LEN {
            return Err(invalid());
        }
        let (xid, seq) = raw.split_once('_').ok_or_else(invalid)?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(xid) || !digits(seq) {
            return Err(invalid());
        }
        Ok(Self {
            xid: xid.parse().map_err(|_| invalid())?,
            seq: seq.parse().map_err(|_| invalid())?,
        })
    }
}

impl fmt::Display for EventCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.xid, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_orders_by_transaction_first() {
        let a = EventCursor { xid: 9, seq: 100 };
        let b = EventCursor { xid: 10, seq: 2 };
        assert!(
            a < b,
            "a later transaction's event comes after, whatever its seq"
        );
        assert_eq!(EventCursor::parse(&b.to_string(), "after").unwrap(), b);
        assert_eq!(
            EventCursor::parse("18446744073709551615_9223372036854775807", "after").unwrap(),
            EventCursor {
                xid: u64::MAX,
                seq: i64::MAX
            }
        );
        assert!(EventCursor::before_transaction(10) < b);
        assert!(EventCursor::before_transaction(10) > a);
    }

    #[test]
    fn anything_else_is_refused() {
        for raw in [
            "",
            "_",
            "1",
            "1_",
            "_1",
            "+1_2",
            "1_-2",
            "1_2_3",
            "a_b",
            " 1_2",
            "18446744073709551616_1",
            "1_9223372036854775808",
            "0000000000000000000000000000000000000001_1",
        ] {
            let err = EventCursor::parse(raw, "after").unwrap_err();
            assert_eq!(err.field, "after", "{raw}");
        }
    }
}
