//! `POST /webhooks/ingress/{token}`: where the upstream delivers events.
//!
//! Authentication is the session's token in the path and the upstream's HMAC over the body,
//! checked in constant time; anything else is 401. The token is looked up before the body is
//! read (a stranger's body is never buffered), and unknown tokens are told apart in memory
//! (`known_tokens`), so guessing costs no database round trip. A verified event is refused
//! when its `timestamp` is far from now (a captured event replayed), then stored, with one
//! outbox row per matching subscription, through the group commit (`services::webhooks::ingest`)
//! before the 2xx: an acknowledged event is never lost, and an event id seen before is
//! acknowledged without storing it twice. While the database is away the answer is 503 with
//! `Retry-After`, and the upstream retries.

use crate::domain::events::is_incoming_duplicate;
use crate::http::body;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::http::tenant::rewrite::rename_session_fields;
use crate::services::webhooks::ingest::Stored;
use crate::services::webhooks::signing::{self, HMAC_HEADER};
use crate::store::webhooks::ingress::Ingress;
use crate::store::webhooks::outbox::NewEvent;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{Map, Value};
use std::time::Duration;

/// The fields of an event tenants receive (UPSTREAM.md, Webhooks). Anything else the upstream
/// might add is dropped rather than risk passing on something of its internals.
const EVENT_FIELDS: &[&str] = &[
    "id",
    "timestamp",
    "event",
    "session",
    "metadata",
    "me",
    "payload",
    "engine",
    "environment",
];

/// How old an event's `timestamp` may be. The upstream retries an event for about a minute
/// (the gateway registers 5 attempts from 2 s, exponential), so an hour admits any late one
/// while a captured event replayed later is refused; the dedupe keys are kept far longer than
/// this (`outbox::purge`), so within the hour a replay is recognised as seen.
pub const MAX_EVENT_AGE: Duration = Duration::from_secs(3600);
/// How far ahead of this replica's clock an event may be (the upstream's clock may run ahead).
pub const MAX_EVENT_AHEAD: Duration = Duration::from_secs(300);
/// The longest event `id` or `event` name taken: the upstream's are about 30 bytes; far longer
/// ones would not fit the dedupe index.
pub const MAX_ID_BYTES: usize = 256;

pub async fn receive(
    req: HttpRequest,
    token: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let refused = || ApiError::unauthorized("invalid webhook signature");
    if !state.relay.tokens.may_exist(&state.db, &token).await? {
        return Err(refused());
    }
    let ingress = state
        .relay
        .tokens
        .ingress(&state.db, &token)
        .await?
        .ok_or_else(refused)?;
    let signature = req
        .headers()
        .get(HMAC_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(refused)?
        .to_owned();
    let body = body::read(&req, payload, body::limits::INGRESS).await?;
    if !signing::verify(ingress.hmac_key.as_bytes(), &body, &signature) {
        tracing::warn!("webhook ingress refused: bad signature");
        return Err(refused());
    }

    let event = body::json(&req, &body)?.unwrap_or(Value::Null);
    let (event_id, name) = identify(&event)?;
    check_timestamp(&event, chrono::Utc::now().timestamp_millis()).inspect_err(|_| {
        tracing::warn!(event = %name, event_id = %event_id, "webhook ingress refused: timestamp missing or far from now");
    })?;
    let incoming_duplicate = is_incoming_duplicate(&name, event.get("payload"));
    let body = tenant_view(event, &ingress);

    let stored = state
        .relay
        .ingest
        .store(NewEvent {
            upstream_session: ingress.upstream_name,
            event_id,
            tenant_id: ingress.tenant_id,
            session_name: ingress.session_name,
            mode: ingress.mode,
            event: name,
            body,
            incoming_duplicate,
        })
        .await?;
    if matches!(stored, Stored::New { .. }) {
        state.events.ingested();
    }
    match stored {
        Stored::New { deliveries: 0 } => {
            tracing::debug!("webhook event stored; no subscription wants it")
        }
        Stored::New { .. } => state.relay.wake.notify_one(),
        Stored::Seen => tracing::debug!("webhook event seen before; acknowledged"),
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "received": true })))
}

/// The event's `id` and `event`: non-empty strings the database can hold and index (no NUL,
/// at most [`MAX_ID_BYTES`]), so that no event can fail the batch it is committed with.
fn identify(event: &Value) -> Result<(String, String), ApiError> {
    let field = |name| {
        event
            .get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty() && v.len() <= MAX_ID_BYTES && !v.contains('\0'))
    };
    match (field("id"), field("event")) {
        (Some(id), Some(name)) => Ok((id.to_owned(), name.to_owned())),
        _ => Err(ApiError::bad_request(format!(
            "an event needs string `id` and `event` of 1 to {MAX_ID_BYTES} bytes, without NUL"
        ))),
    }
}

/// An event must say when it happened (`timestamp`, Unix milliseconds), and that must be
/// within [`MAX_EVENT_AGE`] before and [`MAX_EVENT_AHEAD`] after `now_ms`: the HMAC covers
/// only the body, so this is what keeps a captured event from being replayed once its id is
/// forgotten.
fn check_timestamp(event: &Value, now_ms: i64) -> Result<(), ApiError> {
    let at = event.get("timestamp").and_then(Value::as_f64);
    let oldest = (now_ms - MAX_EVENT_AGE.as_millis() as i64) as f64;
    let newest = (now_ms + MAX_EVENT_AHEAD.as_millis() as i64) as f64;
    match at {
        Some(at) if (oldest..=newest).contains(&at) => Ok(()),
        _ => Err(ApiError::bad_request(format!(
            "an event needs a `timestamp` (milliseconds) within {} minutes before and {} after now",
            MAX_EVENT_AGE.as_secs() / 60,
            MAX_EVENT_AHEAD.as_secs() / 60
        ))),
    }
}

/// The event as the tenant sees it: the documented fields only, its own session name.
fn tenant_view(event: Value, ingress: &Ingress) -> Vec<u8> {
    let mut out = Map::new();
    if let Value::Object(mut fields) = event {
        for name in EVENT_FIELDS {
            if let Some(value) = fields.remove(*name) {
                out.insert((*name).to_owned(), value);
            }
        }
    }
    let mut out = Value::Object(out);
    // The envelope's fields, and the payload's own (`session.status` names the session in
    // `payload.name`); never every equal string, which an adopted name like `default` is.
    rename_session_fields(&mut out, &ingress.upstream_name, &ingress.session_name);
    if let Some(payload) = out.get_mut("payload") {
        rename_session_fields(payload, &ingress.upstream_name, &ingress.session_name);
    }
    out["session"] = Value::String(ingress.session_name.clone());
    serde_json::to_vec(&out).expect("a JSON value serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use uuid::Uuid;

    #[test]
    fn the_tenant_sees_its_own_name_and_only_documented_fields() {
        let ingress = Ingress {
            upstream_name: "gw_abcdefghijklmnopqrst".into(),
            hmac_key: "k".into(),
            tenant_id: Uuid::nil(),
            session_name: "default".into(),
            mode: crate::domain::Mode::Live,
        };
        let event = json!({
            "id": "evt_1", "timestamp": 1, "event": "message", "session": "gw_abcdefghijklmnopqrst",
            "metadata": {"a": "b"}, "me": {"id": "1@c.us"},
            "payload": {"body": "hi", "session": "gw_abcdefghijklmnopqrst"},
            "engine": "WEBJS", "environment": {"tier": "PLUS"}, "webhookHmacKey": "secret"
        });
        let out: Value = serde_json::from_slice(&tenant_view(event, &ingress)).unwrap();
        assert_eq!(out["session"], "default");
        assert_eq!(out["payload"]["session"], "default");
        assert_eq!(out["metadata"]["a"], "b");
        assert!(out.get("webhookHmacKey").is_none());
        assert!(!out.to_string().contains("gw_abcdefghijklmnopqrst"));
    }

    #[test]
    fn an_adopted_name_is_renamed_in_session_fields_only() {
        let ingress = Ingress {
            upstream_name: "default".into(),
            hmac_key: "k".into(),
            tenant_id: Uuid::nil(),
            session_name: "sales".into(),
            mode: crate::domain::Mode::Live,
        };
        let status = json!({"id": "evt_1", "timestamp": 1, "event": "session.status",
                            "session": "default", "payload": {"name": "default", "status": "WORKING"}});
        let out: Value = serde_json::from_slice(&tenant_view(status, &ingress)).unwrap();
        assert_eq!(out["payload"]["name"], "sales");
        let message = json!({"id": "evt_2", "timestamp": 1, "event": "message", "session": "default",
                             "payload": {"body": "default", "from": "1@c.us"}});
        let out: Value = serde_json::from_slice(&tenant_view(message, &ingress)).unwrap();
        assert_eq!(out["session"], "sales");
        assert_eq!(
            out["payload"]["body"], "default",
            "a message's text is not a session name"
        );
    }

    #[test]
    fn events_far_from_now_are_refused() {
        let now = 1_800_000_000_000_i64;
        let at = |ts: Value| json!({"id": "e", "event": "message", "timestamp": ts});
        assert!(check_timestamp(&at(json!(now)), now).is_ok());
        assert!(check_timestamp(&at(json!(now - 59 * 60_000)), now).is_ok());
        assert!(check_timestamp(&at(json!(now + 4 * 60_000)), now).is_ok());
        assert!(check_timestamp(&at(json!(now - 61 * 60_000)), now).is_err());
        assert!(check_timestamp(&at(json!(now - 2 * 86_400_000)), now).is_err());
        assert!(check_timestamp(&at(json!(now + 6 * 60_000)), now).is_err());
        // Seconds instead of milliseconds read as 1970: refused, never taken as now.
        assert!(check_timestamp(&at(json!(now / 1000)), now).is_err());
        assert!(check_timestamp(&at(json!("soon")), now).is_err());
        assert!(check_timestamp(&json!({"id": "e", "event": "message"}), now).is_err());
    }
}
