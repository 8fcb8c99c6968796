//! `POST /webhooks/ingress/{token}`: where the upstream delivers events.
//!
//! Authentication is the session's token in the path and the upstream's HMAC over the body,
//! checked in constant time; anything else is 401. A verified event is stored, with one outbox
//! row per matching subscription, in one transaction before the 2xx: an acknowledged event is
//! never lost, and an event id seen before is acknowledged without storing it twice.

use super::events::is_incoming_duplicate;
use super::signing::{self, HMAC_HEADER};
use crate::db::Db;
use crate::error::ApiError;
use crate::upstream::rewrite::rename_strings;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{Map, Value};
use uuid::Uuid;

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

struct Ingress {
    upstream_name: String,
    hmac_key: String,
    tenant_id: Uuid,
    session_name: String,
}

pub async fn receive(
    req: HttpRequest,
    token: web::Path<String>,
    body: web::Bytes,
    pool: web::Data<Db>,
    relay: web::Data<super::Relay>,
) -> Result<HttpResponse, ApiError> {
    let refused = || ApiError::unauthorized("invalid webhook signature");
    let found: Option<(String, String, Uuid, String)> = sqlx::query_as(
        "SELECT i.upstream_name, i.hmac_key, s.tenant_id, s.name FROM webhook_ingress i \
         JOIN sessions s ON s.upstream_name = i.upstream_name WHERE i.token = $1",
    )
    .bind(token.as_str())
    .fetch_optional(pool.get_ref())
    .await?;
    let Some((upstream_name, hmac_key, tenant_id, session_name)) = found else {
        return Err(refused());
    };
    let ingress = Ingress {
        upstream_name,
        hmac_key,
        tenant_id,
        session_name,
    };
    let signature = req
        .headers()
        .get(HMAC_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(refused)?;
    if !signing::verify(ingress.hmac_key.as_bytes(), &body, signature) {
        tracing::warn!("webhook ingress refused: bad signature");
        return Err(refused());
    }

    let event: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    let (event_id, name) = match (
        event.get("id").and_then(Value::as_str),
        event.get("event").and_then(Value::as_str),
    ) {
        (Some(id), Some(name)) if !id.is_empty() => (id.to_owned(), name.to_owned()),
        _ => {
            return Err(ApiError::bad_request(
                "an event needs string `id` and `event`",
            ))
        }
    };
    let incoming_duplicate = is_incoming_duplicate(&name, event.get("payload"));
    let tenant_body = tenant_view(event, &ingress);

    let stored = store(
        &pool,
        &ingress,
        &event_id,
        &name,
        &tenant_body,
        incoming_duplicate,
    )
    .await?;
    match stored {
        Some(0) => tracing::debug!(event = %name, "webhook event stored; no subscription wants it"),
        Some(_) => relay.wake.notify_one(),
        None => tracing::debug!(event = %name, "webhook event seen before; acknowledged"),
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "received": true })))
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
    rename_strings(&mut out, &ingress.upstream_name, &ingress.session_name);
    out["session"] = Value::String(ingress.session_name.clone());
    serde_json::to_vec(&out).expect("a JSON value serialises")
}

/// Stores the event and its deliveries in one statement (so one round trip and one commit),
/// answering how many deliveries it made; `None` when the event was already stored.
async fn store(
    pool: &Db,
    ingress: &Ingress,
    event_id: &str,
    name: &str,
    body: &[u8],
    incoming_duplicate: bool,
) -> Result<Option<i64>, ApiError> {
    // A subscription to both `message` and `message.any` takes an incoming message from
    // `message` only, so it arrives once. No NOTIFY: it serialises every committing
    // transaction that sends one, capping ingress at one fsync at a time; this replica's
    // workers are woken in-process and the others find the rows on their next poll.
    let made: Option<i64> = sqlx::query_scalar(
        "WITH event AS ( \
           INSERT INTO webhook_events (id, upstream_session, event_id, tenant_id, session_name, event, body) \
           VALUES ($1, $2, $3, $4, $5, $6, $7) \
           ON CONFLICT ON CONSTRAINT webhook_events_dedupe_key DO NOTHING RETURNING id), \
         deliveries AS ( \
           INSERT INTO webhook_deliveries (id, event_pk, subscription_id, tenant_id, session_name) \
           SELECT gen_random_uuid(), event.id, w.id, w.tenant_id, w.session_name \
           FROM event, webhook_subscriptions w \
           WHERE w.tenant_id = $4 AND w.session_name = $5 AND $6 = ANY(w.events) \
             AND NOT ($8 AND 'message' = ANY(w.events)) \
           ON CONFLICT ON CONSTRAINT webhook_deliveries_once_key DO NOTHING RETURNING 1) \
         SELECT (SELECT count(*) FROM deliveries) FROM event",
    )
    .bind(Uuid::now_v7())
    .bind(&ingress.upstream_name)
    .bind(event_id)
    .bind(ingress.tenant_id)
    .bind(&ingress.session_name)
    .bind(name)
    .bind(body)
    .bind(incoming_duplicate)
    .fetch_optional(pool)
    .await?;
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_tenant_sees_its_own_name_and_only_documented_fields() {
        let ingress = Ingress {
            upstream_name: "gw_abcdefghijklmnopqrst".into(),
            hmac_key: "k".into(),
            tenant_id: Uuid::nil(),
            session_name: "default".into(),
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
}
