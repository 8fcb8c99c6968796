//! Events as the upstream sends them: which registrations of a session get one, and the WAHA
//! envelope around its payload. `delivery` then sends them.

use super::delivery::{ulid, Delivery};
use super::state::{Session, SimState};
use bytes::Bytes;
use serde_json::{json, Value};

/// Fires `event` for `session`: one delivery per registration subscribed to it (none at all
/// with `--no-webhooks`). Called with the sessions lock held, so events leave in the order
/// they happened.
pub fn emit(state: &SimState, session: &Session, event: &str, payload: Value) {
    if !state.options.send_webhooks {
        return;
    }
    let epoch = state.outbox.epoch();
    for registration in session.webhooks.iter().filter(|r| r.wants(event)) {
        let body = envelope(session, event, payload.clone());
        state
            .outbox
            .submit(Delivery::new(epoch, registration, body));
    }
}

/// The body every registration gets: each its own event id, so each its own body.
fn envelope(session: &Session, event: &str, payload: Value) -> Bytes {
    let envelope = json!({
        "id": ulid("evt_"),
        "timestamp": chrono::Utc::now().timestamp_millis(),
        "event": event,
        "session": session.name,
        "metadata": session.metadata(),
        "me": session.me,
        "payload": payload,
        "engine": "WEBJS",
        "environment": {"version": "2026.7.1", "tier": "PLUS"},
    });
    Bytes::from(serde_json::to_vec(&envelope).expect("JSON value"))
}
