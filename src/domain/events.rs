//! The event names a subscription may ask for (the seed's table, nothing else), and those the
//! gateway adds to the event log.

use crate::domain::Invalid;

/// Every event the hosted API can send (seed, "Supported events values").
pub const EVENT_NAMES: &[&str] = &[
    "session.status",
    "message",
    "message.any",
    "message.reaction",
    "message.ack",
    "message.waiting",
    "message.revoked",
    "message.edited",
    "chat.archive",
    "group.v2.join",
    "group.v2.leave",
    "group.v2.update",
    "group.v2.participants",
    "group.join",
    "group.leave",
    "presence.update",
    "poll.vote",
    "poll.vote.failed",
    "call.received",
    "call.accepted",
    "call.rejected",
    "label.upsert",
    "label.deleted",
    "label.chat.added",
    "label.chat.deleted",
    "event.response",
    "event.response.failed",
    "engine.event",
];

/// Events the gateway itself writes to a tenant's event log, beside the upstream's.
pub const GATEWAY_EVENTS: &[&str] = &["webhook.disabled"];

/// Whether a tenant's event log can hold `name`: one of the upstream's events or the gateway's.
pub fn is_logged(name: &str) -> bool {
    EVENT_NAMES.contains(&name) || GATEWAY_EVENTS.contains(&name)
}

/// What a subscription asks for when it names no events.
pub const DEFAULT_EVENTS: &[&str] = &["message"];

/// The requested names, deduplicated in the order given; an unknown name is refused with a
/// message that lists the valid ones.
pub fn parse_events(raw: Option<&[String]>) -> Result<Vec<String>, Invalid> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_EVENTS.iter().map(|e| (*e).to_owned()).collect());
    };
    if raw.is_empty() {
        return Err(Invalid::new(
            "events",
            "events must name at least one event",
        ));
    }
    let unknown: Vec<&str> = raw
        .iter()
        .map(String::as_str)
        .filter(|e| !EVENT_NAMES.contains(e))
        .collect();
    if !unknown.is_empty() {
        return Err(Invalid::new(
            "events",
            format!(
                "unknown event(s): {}; valid events are: {}",
                unknown.join(", "),
                EVENT_NAMES.join(", ")
            ),
        ));
    }
    let mut events: Vec<String> = Vec::with_capacity(raw.len());
    for e in raw {
        if !events.contains(e) {
            events.push(e.clone());
        }
    }
    Ok(events)
}

/// Whether a `message.any` event would reach a subscription twice: an incoming message also
/// arrives as `message`, so a subscription to both gets it from `message` only.
pub fn is_incoming_duplicate(event: &str, payload: Option<&serde_json::Value>) -> bool {
    event == "message.any"
        && !payload
            .and_then(|p| p.get("fromMe"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_seed_table_has_every_name_once() {
        let mut names = EVENT_NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EVENT_NAMES.len());
        assert_eq!(EVENT_NAMES.len(), 28);
    }

    #[test]
    fn default_and_dedupe() {
        assert_eq!(parse_events(None).unwrap(), vec!["message"]);
        let raw = vec!["message".to_owned(), "message.ack".into(), "message".into()];
        assert_eq!(
            parse_events(Some(&raw)).unwrap(),
            vec!["message", "message.ack"]
        );
    }

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let raw = vec!["message".to_owned(), "messages".into()];
        let err = parse_events(Some(&raw)).unwrap_err();
        assert_eq!(err.field, "events");
        assert!(err.message.contains("unknown event(s): messages"));
        assert!(err.message.contains("session.status"));
        assert!(err.message.contains("engine.event"));
    }

    #[test]
    fn only_incoming_message_any_is_a_duplicate() {
        assert!(is_incoming_duplicate(
            "message.any",
            Some(&json!({"fromMe": false}))
        ));
        assert!(is_incoming_duplicate("message.any", Some(&json!({}))));
        assert!(!is_incoming_duplicate(
            "message.any",
            Some(&json!({"fromMe": true}))
        ));
        assert!(!is_incoming_duplicate(
            "message",
            Some(&json!({"fromMe": false}))
        ));
    }
}
