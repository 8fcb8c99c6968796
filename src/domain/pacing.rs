//! Send pacing: how fast a session may send, so that WhatsApp does not take its number for a
//! spammer's. A policy is five optional limits; a limit left out is no limit. A session's
//! policy is its own (or else its tenant's default), made stricter by the tenant's ceiling:
//! an admin's ceiling is the loosest any session of the tenant may go.
//!
//! When a send may go is decided here from what the line of earlier sends looks like
//! ([`Line`], read from the database); waiting and counting live in `services::pacing`.

use crate::domain::Invalid;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The five limits, by their names in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Least time between two sends, counted from the moment the upstream answered the one
    /// before (so the upstream sees them at least this far apart, whatever the network does).
    MinIntervalMs,
    /// A random extra wait of up to this much, added to each interval.
    JitterMs,
    MaxPerMinute,
    MaxPerHour,
    /// Sends to chats the session never sent to nor heard from, in any 24 hours.
    MaxNewChatsPerDay,
}

impl Limit {
    pub const ALL: [Limit; 5] = [
        Limit::MinIntervalMs,
        Limit::JitterMs,
        Limit::MaxPerMinute,
        Limit::MaxPerHour,
        Limit::MaxNewChatsPerDay,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Limit::MinIntervalMs => "minIntervalMs",
            Limit::JitterMs => "jitterMs",
            Limit::MaxPerMinute => "maxPerMinute",
            Limit::MaxPerHour => "maxPerHour",
            Limit::MaxNewChatsPerDay => "maxNewChatsPerDay",
        }
    }

    /// The values a policy may hold, inclusive. Counts start at 1 (a session that may not send
    /// is a suspended tenant's business), except new chats: 0 is "reply only".
    pub fn bounds(self) -> (u32, u32) {
        match self {
            Limit::MinIntervalMs | Limit::JitterMs => (0, MAX_MS),
            Limit::MaxPerMinute => (1, 10_000),
            Limit::MaxPerHour => (1, 100_000),
            Limit::MaxNewChatsPerDay => (0, 100_000),
        }
    }

    /// Whether a higher value is the stricter one (waits), or a lower one (counts).
    fn higher_is_stricter(self) -> bool {
        matches!(self, Limit::MinIntervalMs | Limit::JitterMs)
    }

    /// The stricter of two values of this limit.
    fn stricter(self, a: u32, b: u32) -> u32 {
        if self.higher_is_stricter() {
            a.max(b)
        } else {
            a.min(b)
        }
    }
}

/// The longest interval or jitter: an hour.
pub const MAX_MS: u32 = 3_600_000;

/// A pacing policy. Every field is optional: left out (or `null`), it sets no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, try_from = "Value")]
pub struct Policy {
    /// Least milliseconds between two sends of the session (0 to 3,600,000), counted from the
    /// moment the upstream answered the send before. Paced sends go one at a time.
    #[schema(example = 30000, minimum = 0, maximum = 3600000)]
    pub min_interval_ms: Option<u32>,
    /// A random extra wait of 0 to this many milliseconds added to every interval (0 to
    /// 3,600,000), so the gaps do not look like a machine's.
    #[schema(example = 30000, minimum = 0, maximum = 3600000)]
    pub jitter_ms: Option<u32>,
    /// Most sends in any 60 seconds (1 to 10,000).
    #[schema(minimum = 1, maximum = 10000)]
    pub max_per_minute: Option<u32>,
    /// Most sends in any 60 minutes (1 to 100,000).
    #[schema(example = 60, minimum = 1, maximum = 100000)]
    pub max_per_hour: Option<u32>,
    /// Most sends to new chats (never sent to nor heard from) in any 24 hours (0 to 100,000;
    /// 0: reply only).
    #[schema(example = 20, minimum = 0, maximum = 100000)]
    pub max_new_chats_per_day: Option<u32>,
}

impl Policy {
    pub fn get(&self, limit: Limit) -> Option<u32> {
        match limit {
            Limit::MinIntervalMs => self.min_interval_ms,
            Limit::JitterMs => self.jitter_ms,
            Limit::MaxPerMinute => self.max_per_minute,
            Limit::MaxPerHour => self.max_per_hour,
            Limit::MaxNewChatsPerDay => self.max_new_chats_per_day,
        }
    }

    fn set(&mut self, limit: Limit, value: Option<u32>) {
        let field = match limit {
            Limit::MinIntervalMs => &mut self.min_interval_ms,
            Limit::JitterMs => &mut self.jitter_ms,
            Limit::MaxPerMinute => &mut self.max_per_minute,
            Limit::MaxPerHour => &mut self.max_per_hour,
            Limit::MaxNewChatsPerDay => &mut self.max_new_chats_per_day,
        };
        *field = value;
    }

    /// Whether any limit is set: a policy without one paces nothing.
    pub fn paces(&self) -> bool {
        Limit::ALL.iter().any(|l| self.get(*l).is_some())
    }

    /// Limit by limit, the stricter of the two (a limit only one of them sets is kept).
    pub fn stricter_of(&self, other: &Policy) -> Policy {
        let mut out = Policy::default();
        for limit in Limit::ALL {
            let value = match (self.get(limit), other.get(limit)) {
                (Some(a), Some(b)) => Some(limit.stricter(a, b)),
                (a, b) => a.or(b),
            };
            out.set(limit, value);
        }
        out
    }

    /// Refuses a value looser than `ceiling`'s, naming it as `{prefix}{limit}`. A limit the
    /// policy leaves out is not an error: the ceiling applies to it anyway.
    pub fn check_within(&self, ceiling: &Policy, prefix: &str) -> Result<(), Invalid> {
        for limit in Limit::ALL {
            let (Some(value), Some(bound)) = (self.get(limit), ceiling.get(limit)) else {
                continue;
            };
            if limit.stricter(value, bound) != value {
                let side = if limit.higher_is_stricter() {
                    "at least"
                } else {
                    "at most"
                };
                return Err(Invalid::new(
                    limit.name(),
                    format!(
                        "{prefix}{}: {value} is looser than the tenant's pacing ceiling, which allows {side} {bound}",
                        limit.name()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Reads a policy from JSON, naming the field of any value that is not one.
    pub fn parse(value: &Value) -> Result<Policy, Invalid> {
        let Value::Object(fields) = value else {
            return Err(Invalid::new(
                "pacing",
                "a pacing policy must be a JSON object",
            ));
        };
        if let Some(unknown) = fields
            .keys()
            .find(|k| !Limit::ALL.iter().any(|l| l.name() == k.as_str()))
        {
            let known: Vec<&str> = Limit::ALL.iter().map(|l| l.name()).collect();
            return Err(Invalid::new(
                "pacing",
                format!(
                    "unknown pacing field `{}`; a policy has {}",
                    echo(unknown),
                    known.join(", ")
                ),
            ));
        }
        let mut policy = Policy::default();
        for limit in Limit::ALL {
            let value = match fields.get(limit.name()) {
                None | Some(Value::Null) => None,
                Some(v) => Some(bounded(limit, v)?),
            };
            policy.set(limit, value);
        }
        Ok(policy)
    }
}

/// A caller's text, cut to a length fit for a message.
fn echo(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

/// One limit's value: a whole number within its bounds (`1e3`, `"300"` and `300.5` are not).
fn bounded(limit: Limit, value: &Value) -> Result<u32, Invalid> {
    let (min, max) = limit.bounds();
    value
        .as_u64()
        .filter(|v| (u64::from(min)..=u64::from(max)).contains(v))
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| {
            Invalid::new(
                limit.name(),
                format!(
                    "{} must be a whole number from {min} to {max} (or null for no limit)",
                    limit.name()
                ),
            )
        })
}

impl TryFrom<Value> for Policy {
    type Error = Invalid;

    fn try_from(value: Value) -> Result<Self, Invalid> {
        Policy::parse(&value)
    }
}

/// A tenant's pacing, as an admin sets it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TenantPacing {
    /// What its sessions without a policy of their own are paced by; null: nothing.
    pub default: Option<Policy>,
    /// The loosest any of its sessions may go, whatever it sets; null: no ceiling.
    pub ceiling: Option<Policy>,
}

impl TenantPacing {
    /// The default must keep within the ceiling (naming the field as `pacing.default.*`).
    pub fn check(&self) -> Result<(), Invalid> {
        match (&self.default, &self.ceiling) {
            (Some(default), Some(ceiling)) => default.check_within(ceiling, "pacing.default."),
            _ => Ok(()),
        }
    }

    /// The policy a session is paced by: its own, else the default, made stricter by the
    /// ceiling; `None` when nothing paces it.
    pub fn effective(&self, own: Option<&Policy>) -> Option<Policy> {
        let base = own.or(self.default.as_ref());
        let policy = match (base, &self.ceiling) {
            (Some(base), Some(ceiling)) => base.stricter_of(ceiling),
            (Some(only), None) | (None, Some(only)) => *only,
            (None, None) => return None,
        };
        policy.paces().then_some(policy)
    }
}

/// The chat a send goes to, in one spelling, so that `+1 234`-style variants of a number
/// count as the same chat: a phone number (bare, `@c.us` or `@s.whatsapp.net`) becomes its
/// digits `@c.us`; any other id is kept as it is.
pub fn chat_key(chat_id: &str) -> String {
    let (local, suffix) = chat_id.split_once('@').unwrap_or((chat_id, "c.us"));
    match suffix {
        "c.us" | "s.whatsapp.net" => {
            let digits: String = local.chars().filter(char::is_ascii_digit).collect();
            format!("{digits}@c.us")
        }
        _ => chat_id.to_owned(),
    }
}

/// What the line of earlier sends looks like to one send, as the database reads it. "Earlier"
/// means an earlier ticket that was not abandoned; a send's time is when it was released, or
/// its predicted slot while it still waits.
#[derive(Debug, Clone, Copy)]
pub struct Line {
    /// The database's clock.
    pub now: DateTime<Utc>,
    pub previous: Option<Previous>,
    /// The time of the `maxPerMinute`-th most recent earlier send (when the policy has one).
    pub minute_anchor: Option<DateTime<Utc>>,
    /// The time of the `maxPerHour`-th most recent earlier send.
    pub hour_anchor: Option<DateTime<Utc>>,
    /// Whether this send's chat was never sent to nor heard from.
    pub new_chat: bool,
    /// The time of the `maxNewChatsPerDay`-th most recent earlier send to a new chat.
    pub new_chat_anchor: Option<DateTime<Utc>>,
}

/// The latest earlier send.
#[derive(Debug, Clone, Copy)]
pub struct Previous {
    /// When the upstream answered it; `None` while it waits or is in flight.
    pub done_at: Option<DateTime<Utc>>,
    pub slot_at: DateTime<Utc>,
    /// Past this it is presumed dead (its replica stopped), and done at this time.
    pub expires_at: DateTime<Utc>,
}

/// What holds a send back the longest: the limit a refusal names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Nothing: it may go now.
    None,
    /// Its turn after the send before it (`minIntervalMs`, `jitterMs`, or one at a time).
    Interval,
    PerMinute,
    PerHour,
    NewChats,
}

/// When a send may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// At `at` (now or later), held back by `hold`.
    At { at: DateTime<Utc>, hold: Hold },
    /// Not before the send ahead of it is answered (or presumed dead).
    AfterPrevious,
    /// Never: `maxNewChatsPerDay` is 0 and the chat is new.
    Never,
}

/// Whether the send is being reserved (predicting from the earlier sends' slots) or released
/// (its turn decided by when the send before it was actually answered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Reserve,
    Release,
}

impl Policy {
    /// When a send whose gap after the previous one is `gap_ms` may go, given `line`.
    pub fn turn(&self, line: &Line, gap_ms: u32, phase: Phase) -> Turn {
        let mut turn = (line.now, Hold::None);
        let mut later = |at: DateTime<Utc>, hold: Hold| {
            if at > turn.0 {
                turn = (at, hold);
            }
        };
        if let Some(previous) = line.previous {
            let answered = match (previous.done_at, phase) {
                (Some(done), _) => done,
                (None, Phase::Release) if line.now < previous.expires_at => {
                    return Turn::AfterPrevious
                }
                (None, Phase::Release) => previous.expires_at,
                (None, Phase::Reserve) => previous.slot_at,
            };
            later(answered + ms(gap_ms), Hold::Interval);
        }
        let windows = [
            (self.max_per_minute, line.minute_anchor, 60, Hold::PerMinute),
            (self.max_per_hour, line.hour_anchor, 3_600, Hold::PerHour),
        ];
        for (limit, anchor, seconds, hold) in windows {
            if let (Some(_), Some(anchor)) = (limit, anchor) {
                later(anchor + TimeDelta::seconds(seconds), hold);
            }
        }
        if line.new_chat {
            match (self.max_new_chats_per_day, line.new_chat_anchor) {
                (Some(0), _) => return Turn::Never,
                (Some(_), Some(anchor)) => later(anchor + TimeDelta::days(1), Hold::NewChats),
                _ => {}
            }
        }
        Turn::At {
            at: turn.0,
            hold: turn.1,
        }
    }

    /// This send's least distance from the one before: the interval and a random part of the
    /// jitter (`unit`, from 0 to 1, picks it).
    pub fn gap_ms(&self, unit: f64) -> u32 {
        let jitter = f64::from(self.jitter_ms.unwrap_or(0)) * unit.clamp(0.0, 1.0);
        self.min_interval_ms.unwrap_or(0) + jitter.round() as u32
    }
}

fn ms(millis: u32) -> TimeDelta {
    TimeDelta::milliseconds(i64::from(millis))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(value: Value) -> Policy {
        Policy::parse(&value).unwrap()
    }

    #[test]
    fn values_are_whole_numbers_within_bounds_and_fields_are_known() {
        let p = policy(json!({"minIntervalMs": 300, "maxPerHour": null}));
        assert_eq!(p.min_interval_ms, Some(300));
        assert_eq!(p.max_per_hour, None);
        for (bad, field) in [
            (json!({"minIntervalMs": -1}), "minIntervalMs"),
            (json!({"jitterMs": 3_600_001}), "jitterMs"),
            (json!({"maxPerMinute": 0}), "maxPerMinute"),
            (json!({"maxPerHour": 1.5}), "maxPerHour"),
            (json!({"maxPerHour": "60"}), "maxPerHour"),
            (json!({"minIntervalMs": 1e3}), "minIntervalMs"),
            (json!({"minIntervalMs": u64::MAX}), "minIntervalMs"),
        ] {
            let err = Policy::parse(&bad).unwrap_err();
            assert_eq!(err.field, field, "{bad}");
            assert!(err.message.contains(field), "{}", err.message);
        }
        let unknown = Policy::parse(&json!({"minIntervalMS": 1})).unwrap_err();
        assert!(unknown.message.contains("`minIntervalMS`"), "{unknown}");
        assert!(Policy::parse(&json!([1])).is_err());
        assert_eq!(
            policy(json!({"maxNewChatsPerDay": 0})).max_new_chats_per_day,
            Some(0)
        );
    }

    #[test]
    fn the_ceiling_tightens_and_refuses_looser_values_by_name() {
        let ceiling = policy(json!({"minIntervalMs": 1000, "maxPerHour": 60}));
        let own = policy(json!({"minIntervalMs": 5000, "maxPerMinute": 3}));
        let tenant = TenantPacing {
            default: None,
            ceiling: Some(ceiling),
        };
        assert_eq!(
            tenant.effective(Some(&own)),
            Some(policy(
                json!({"minIntervalMs": 5000, "maxPerMinute": 3, "maxPerHour": 60})
            ))
        );
        assert_eq!(tenant.effective(None), Some(ceiling));
        assert!(own.check_within(&ceiling, "").is_ok());
        let err = policy(json!({"minIntervalMs": 500}))
            .check_within(&ceiling, "")
            .unwrap_err();
        assert_eq!(err.field, "minIntervalMs");
        let err = policy(json!({"maxPerHour": 61}))
            .check_within(&ceiling, "pacing.default.")
            .unwrap_err();
        assert!(
            err.message.starts_with("pacing.default.maxPerHour"),
            "{err}"
        );
    }

    #[test]
    fn nothing_set_paces_nothing() {
        let none = TenantPacing::default();
        assert_eq!(none.effective(None), None);
        assert_eq!(none.effective(Some(&Policy::default())), None);
        let default = TenantPacing {
            default: Some(policy(json!({"maxPerHour": 10}))),
            ceiling: None,
        };
        // A session's own policy replaces the default.
        assert_eq!(default.effective(Some(&Policy::default())), None);
    }

    #[test]
    fn phone_numbers_are_one_chat_however_spelled() {
        for spelling in ["1234567890", "+1234567890", "1234567890@s.whatsapp.net"] {
            assert_eq!(chat_key(spelling), "1234567890@c.us");
        }
        assert_eq!(chat_key("120363@g.us"), "120363@g.us");
    }

    fn at(ms_after: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + TimeDelta::milliseconds(ms_after)
    }

    #[test]
    fn a_send_waits_for_the_previous_answer_then_the_interval() {
        let p = policy(json!({"minIntervalMs": 300}));
        let mut line = Line {
            now: at(1000),
            previous: Some(Previous {
                done_at: None,
                slot_at: at(900),
                expires_at: at(60_000),
            }),
            minute_anchor: None,
            hour_anchor: None,
            new_chat: false,
            new_chat_anchor: None,
        };
        assert_eq!(p.turn(&line, 300, Phase::Release), Turn::AfterPrevious);
        let predicted = p.turn(&line, 300, Phase::Reserve);
        assert_eq!(
            predicted,
            Turn::At {
                at: at(1200),
                hold: Hold::Interval
            }
        );
        line.previous.as_mut().unwrap().done_at = Some(at(1050));
        assert_eq!(
            p.turn(&line, 300, Phase::Release),
            Turn::At {
                at: at(1350),
                hold: Hold::Interval
            }
        );
        line.now = at(70_000);
        line.previous.as_mut().unwrap().done_at = None;
        // Presumed dead once expired: the line moves on.
        assert_eq!(
            p.turn(&line, 300, Phase::Release),
            Turn::At {
                at: at(70_000),
                hold: Hold::None
            }
        );
    }

    #[test]
    fn windows_and_new_chats_hold_a_send_until_they_free() {
        let p = policy(json!({"maxPerMinute": 2, "maxNewChatsPerDay": 1}));
        let line = Line {
            now: at(10_000),
            previous: None,
            minute_anchor: Some(at(5_000)),
            hour_anchor: None,
            new_chat: true,
            new_chat_anchor: Some(at(1_000)),
        };
        assert_eq!(
            p.turn(&line, 0, Phase::Reserve),
            Turn::At {
                at: at(1_000 + 86_400_000),
                hold: Hold::NewChats
            }
        );
        let known = Line {
            new_chat: false,
            ..line
        };
        assert_eq!(
            p.turn(&known, 0, Phase::Reserve),
            Turn::At {
                at: at(65_000),
                hold: Hold::PerMinute
            }
        );
        let reply_only = policy(json!({"maxNewChatsPerDay": 0}));
        assert_eq!(reply_only.turn(&line, 0, Phase::Reserve), Turn::Never);
    }

    #[test]
    fn the_gap_is_the_interval_plus_part_of_the_jitter() {
        let p = policy(json!({"minIntervalMs": 1000, "jitterMs": 500}));
        assert_eq!(p.gap_ms(0.0), 1000);
        assert_eq!(p.gap_ms(1.0), 1500);
        assert_eq!(Policy::default().gap_ms(0.7), 0);
    }
}
