//! The control API under `/_sim/`, for tests and demos: what the phone and the contacts would
//! do (scan, incoming messages, reactions, acks), status changes, faults, the log, the
//! webhook deliveries still pending, reset. It needs no key and spends no quota.
//!
//! - `GET /_sim/sessions/{name}`: the session with its webhooks (keys hidden), groups,
//!   channels and presence.
//! - `POST /_sim/sessions/{name}/scan` `{"phone"?}`, `.../incoming` `{"from", "text"}`,
//!   `.../reaction` `{"messageId", "reaction", "from"?}`, `.../ack` `{"messageId", "ack"}`,
//!   `.../status` `{"status"}`, `.../events` `{"event", "payload"}`.
//! - `GET|DELETE /_sim/log`; `GET|POST|DELETE /_sim/faults`, `DELETE /_sim/faults/{id}`.
//! - `GET /_sim/deliveries`: `{"pending": n}`, the webhook deliveries queued, being attempted
//!   or waiting for a retry; 0 once every one was delivered or given up on, so a test can wait
//!   for it instead of sleeping.
//! - `POST /_sim/reset`: forgets everything, pending deliveries included.

use super::api::{with_session, with_session_in};
use super::body::{json_body, required};
use super::chat::{self, chat_id, message_id, ChatServer, ACK_LEVELS};
use super::error::{SimError, SimResult};
use super::faults::Fault;
use super::lifecycle;
use super::routing::resources;
use super::state::{SimState, Status};
use super::webhooks::emit;
use actix_web::{web, HttpResponse};
use bytes::Bytes;
use serde_json::{json, Value};

type Sim = web::Data<SimState>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope("/_sim").configure(|cfg| {
        resources!(cfg;
            "/sessions/{name}" => get(session_view);
            "/sessions/{name}/scan" => post(scan);
            "/sessions/{name}/incoming" => post(incoming);
            "/sessions/{name}/reaction" => post(reaction);
            "/sessions/{name}/ack" => post(ack);
            "/sessions/{name}/status" => post(status);
            "/sessions/{name}/events" => post(event);
            "/log" => get(read_log), delete(clear_log);
            "/faults" => get(list_faults), post(add_fault), delete(clear_faults);
            "/faults/{id}" => delete(remove_fault);
            "/deliveries" => get(deliveries);
            "/reset" => post(reset);
        );
    }));
}

/// The session with what tests need to see: its webhooks (keys hidden), groups, channels,
/// presence.
async fn session_view(state: Sim, name: web::Path<String>) -> SimResult {
    with_session(&state, &name, |s| {
        let mut view = s.info();
        view["webhooks"] = Value::Array(s.webhooks.iter().map(|w| w.view()).collect());
        view["groups"] = json!(s.groups.values().collect::<Vec<_>>());
        view["channels"] = json!(s.channels.keys().collect::<Vec<_>>());
        view["presence"] = json!(s.presence);
        view["chatPresence"] = json!(s.chat_presence);
        Ok(HttpResponse::Ok().json(view))
    })
}

/// The phone scans the code: WORKING. `{"phone"}` picks the account (a phone that is not a
/// string is ignored).
async fn scan(state: Sim, name: web::Path<String>, body: Bytes) -> SimResult {
    let body = json_body(&body)?;
    let phone = match body.get("phone").and_then(Value::as_str) {
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => Some(p.to_owned()),
        Some(_) => return Err(SimError::bad_request("phone must be digits")),
        None => None,
    };
    with_session_in(&state, &name, Status::ScanQrCode, |s| {
        if phone.is_some() {
            s.pairing_phone = phone;
        }
        lifecycle::scan(&state, s);
        Ok(HttpResponse::Ok().json(s.info()))
    })
}

/// A message from a contact: fires `message` and `message.any`.
async fn incoming(state: Sim, name: web::Path<String>, body: Bytes) -> SimResult {
    let body = json_body(&body)?;
    let from = chat_id(&required(&body, "from")?)?;
    let text = required(&body, "text")?;
    with_session_in(&state, &name, Status::Working, |s| {
        let id = message_id(false, &from);
        let message = chat::message(&id, false, &s.me_id(), &from, &text, false);
        emit(&state, s, "message", message.clone());
        emit(&state, s, "message.any", message.clone());
        Ok(HttpResponse::Created().json(message))
    })
}

/// `{"messageId", "reaction", "from"?}`: fires `message.reaction`. Without a `from` (or with
/// one that is not a string) a fixed contact reacts.
async fn reaction(state: Sim, name: web::Path<String>, body: Bytes) -> SimResult {
    let body = json_body(&body)?;
    let message = required(&body, "messageId")?;
    let text = required(&body, "reaction")?;
    let from = body
        .get("from")
        .and_then(Value::as_str)
        .map(chat_id)
        .transpose()?;
    with_session_in(&state, &name, Status::Working, |s| {
        let from = from.unwrap_or_else(|| ChatServer::Contact.id("1234567890"));
        let id = message_id(false, &from);
        let mut payload = chat::message_head(&id, false, &s.me_id(), &from);
        payload["reaction"] = json!({"text": text, "messageId": message});
        emit(&state, s, "message.reaction", payload.clone());
        Ok(HttpResponse::Created().json(payload))
    })
}

/// `{"messageId", "ack"}` (-1 ERROR ... 4 PLAYED): fires `message.ack`.
async fn ack(state: Sim, name: web::Path<String>, body: Bytes) -> SimResult {
    let body = json_body(&body)?;
    let message = required(&body, "messageId")?;
    let ack = body
        .get("ack")
        .and_then(Value::as_i64)
        .filter(|a| ACK_LEVELS.contains(a))
        .ok_or_else(|| SimError::bad_request("ack must be -1 to 4"))?;
    with_session(&state, &name, |s| {
        // The chat is the middle part of `true_<chat>_<id>`.
        let to = message.split('_').nth(1).unwrap_or_default();
        let payload = chat::ack(&message, &s.me_id(), to, ack);
        emit(&state, s, "message.ack", payload.clone());
        Ok(HttpResponse::Created().json(payload))
    })
}

/// `{"status"}`: moves the session there, firing `session.status`.
async fn status(state: Sim, name: web::Path<String>, body: Bytes) -> SimResult {
    let body = json_body(&body)?;
    let wanted = required(&body, "status")?;
    let status = Status::parse(&wanted).ok_or_else(|| {
        SimError::bad_request(
            "status must be one of STOPPED, STARTING, SCAN_QR_CODE, WORKING, FAILED",
        )
    })?;
    with_session(&state, &name, |s| {
        if status == Status::Working && s.me.is_none() {
            lifecycle::scan(&state, s);
        } else {
            lifecycle::set_status(&state, s, status);
        }
        Ok(HttpResponse::Ok().json(s.info()))
    })
}

/// `{"event", "payload"}`: fires any event of the seed's list as it is given.
async fn event(state: Sim, name: web::Path<String>, body: Bytes) -> SimResult {
    let body = json_body(&body)?;
    let event = required(&body, "event")?;
    let payload = body.get("payload").cloned().unwrap_or_else(|| json!({}));
    with_session(&state, &name, |s| {
        emit(&state, s, &event, payload);
        Ok(HttpResponse::Created().json(json!({"event": event})))
    })
}

async fn read_log(state: Sim) -> HttpResponse {
    HttpResponse::Ok().json(&*state.log.lock().unwrap())
}

async fn clear_log(state: Sim) -> HttpResponse {
    state.log.lock().unwrap().clear();
    HttpResponse::NoContent().finish()
}

async fn list_faults(state: Sim) -> HttpResponse {
    HttpResponse::Ok().json(&*state.faults.lock().unwrap())
}

/// `{"path", "method"?, "status"?, "message"?, "retryAfter"?, "delayMs"?, "drop"?, "count"?}`.
async fn add_fault(state: Sim, body: Bytes) -> SimResult {
    let fault = Fault::parse(state.next_id(), &json_body(&body)?)?;
    state.faults.lock().unwrap().push(fault.clone());
    Ok(HttpResponse::Created().json(fault))
}

async fn clear_faults(state: Sim) -> HttpResponse {
    state.faults.lock().unwrap().clear();
    HttpResponse::NoContent().finish()
}

async fn remove_fault(state: Sim, id: web::Path<u64>) -> SimResult {
    let mut faults = state.faults.lock().unwrap();
    let before = faults.len();
    faults.retain(|f| f.id != *id);
    if faults.len() == before {
        return Err(SimError::not_found(format!("no fault {id}")));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// How many webhook deliveries are not done yet: queued, being attempted or waiting for a
/// retry.
async fn deliveries(state: Sim) -> HttpResponse {
    HttpResponse::Ok().json(json!({"pending": state.outbox.pending()}))
}

async fn reset(state: Sim) -> HttpResponse {
    state.reset();
    HttpResponse::Ok().json(json!({"reset": true}))
}
