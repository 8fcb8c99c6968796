//! The control API under `/_sim/`, for tests and demos: what the phone and the contacts would
//! do (scan, incoming messages, reactions, acks), status changes, faults, the log, reset.
//! It needs no key and spends no quota.

use super::api::{chat_id, json_body, message_id, require_status, required, with_session};
use super::error::SimError;
use super::faults::Fault;
use super::lifecycle;
use super::state::{SimState, Status};
use actix_web::{web, HttpResponse};
use bytes::Bytes;
use serde_json::{json, Value};

type Sim = web::Data<SimState>;
type Answer = Result<HttpResponse, SimError>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    use web::{delete, get, post, resource};
    cfg.service(
        web::scope("/_sim")
            .service(resource("/sessions/{name}").route(get().to(session_view)))
            .service(resource("/sessions/{name}/scan").route(post().to(scan)))
            .service(resource("/sessions/{name}/incoming").route(post().to(incoming)))
            .service(resource("/sessions/{name}/reaction").route(post().to(reaction)))
            .service(resource("/sessions/{name}/ack").route(post().to(ack)))
            .service(resource("/sessions/{name}/status").route(post().to(status)))
            .service(resource("/sessions/{name}/events").route(post().to(event)))
            .service(
                resource("/log")
                    .route(get().to(read_log))
                    .route(delete().to(clear_log)),
            )
            .service(
                resource("/faults")
                    .route(get().to(list_faults))
                    .route(post().to(add_fault))
                    .route(delete().to(clear_faults)),
            )
            .service(resource("/faults/{id}").route(delete().to(remove_fault)))
            .service(resource("/reset").route(post().to(reset))),
    );
}

/// The session with what tests need to see: its webhooks (keys hidden), groups, channels,
/// presence.
async fn session_view(state: Sim, name: web::Path<String>) -> Answer {
    with_session(&state, &name, |s| {
        let mut view = s.info();
        view["webhooks"] = Value::Array(s.webhooks.iter().map(|w| w.view()).collect());
        view["groups"] = Value::Array(s.groups.values().cloned().collect());
        view["channels"] = json!(s.channels.keys().collect::<Vec<_>>());
        view["presence"] = json!(s.presence);
        view["chatPresence"] = json!(s.chat_presence);
        Ok(HttpResponse::Ok().json(view))
    })
}

/// The phone scans the code: WORKING. `{"phone"}` picks the account.
async fn scan(state: Sim, name: web::Path<String>, body: Bytes) -> Answer {
    let body = json_body(&body)?;
    let phone = match body.get("phone").and_then(Value::as_str) {
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => Some(p.to_owned()),
        Some(_) => return Err(SimError::bad_request("phone must be digits")),
        None => None,
    };
    with_session(&state, &name, |s| {
        require_status(s, Status::ScanQrCode)?;
        if phone.is_some() {
            s.pairing_phone = phone;
        }
        lifecycle::scan(&state, s);
        Ok(HttpResponse::Ok().json(s.info()))
    })
}

/// A message from a contact: fires `message` and `message.any`.
async fn incoming(state: Sim, name: web::Path<String>, body: Bytes) -> Answer {
    let body = json_body(&body)?;
    let from = chat_id(&required(&body, "from")?)?;
    let text = required(&body, "text")?;
    with_session(&state, &name, |s| {
        require_status(s, Status::Working)?;
        let message = json!({
            "id": message_id(false, &from),
            "timestamp": chrono::Utc::now().timestamp(),
            "from": from,
            "fromMe": false,
            "to": s.me_id(),
            "body": text,
            "hasMedia": false,
            "ack": 1,
        });
        state.emit(s, "message", message.clone());
        state.emit(s, "message.any", message.clone());
        Ok(HttpResponse::Created().json(message))
    })
}

/// `{"messageId", "reaction", "from"?}`: fires `message.reaction`.
async fn reaction(state: Sim, name: web::Path<String>, body: Bytes) -> Answer {
    let body = json_body(&body)?;
    let message = required(&body, "messageId")?;
    let text = required(&body, "reaction")?;
    let from = body
        .get("from")
        .and_then(Value::as_str)
        .map(chat_id)
        .transpose()?;
    with_session(&state, &name, |s| {
        require_status(s, Status::Working)?;
        let from = from.unwrap_or_else(|| "1234567890@c.us".into());
        let payload = json!({
            "id": message_id(false, &from),
            "timestamp": chrono::Utc::now().timestamp(),
            "from": from,
            "fromMe": false,
            "to": s.me_id(),
            "reaction": {"text": text, "messageId": message},
        });
        state.emit(s, "message.reaction", payload.clone());
        Ok(HttpResponse::Created().json(payload))
    })
}

/// `{"messageId", "ack"}` (-1 ERROR ... 4 PLAYED): fires `message.ack`.
async fn ack(state: Sim, name: web::Path<String>, body: Bytes) -> Answer {
    const NAMES: [&str; 6] = ["ERROR", "PENDING", "SERVER", "DEVICE", "READ", "PLAYED"];
    let body = json_body(&body)?;
    let message = required(&body, "messageId")?;
    let ack = body
        .get("ack")
        .and_then(Value::as_i64)
        .filter(|a| (-1..=4).contains(a))
        .ok_or_else(|| SimError::bad_request("ack must be -1 to 4"))?;
    with_session(&state, &name, |s| {
        // The chat is the middle part of `true_<chat>_<id>`.
        let to = message.split('_').nth(1).unwrap_or_default().to_owned();
        let payload = json!({
            "id": message, "from": s.me_id(), "fromMe": true, "to": to,
            "participant": null, "ack": ack, "ackName": NAMES[(ack + 1) as usize],
        });
        state.emit(s, "message.ack", payload.clone());
        Ok(HttpResponse::Created().json(payload))
    })
}

/// `{"status"}`: moves the session there, firing `session.status`.
async fn status(state: Sim, name: web::Path<String>, body: Bytes) -> Answer {
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
            state.set_status(s, status);
        }
        Ok(HttpResponse::Ok().json(s.info()))
    })
}

/// `{"event", "payload"}`: fires any event of the seed's list as it is given.
async fn event(state: Sim, name: web::Path<String>, body: Bytes) -> Answer {
    let body = json_body(&body)?;
    let event = required(&body, "event")?;
    let payload = body.get("payload").cloned().unwrap_or_else(|| json!({}));
    with_session(&state, &name, |s| {
        state.emit(s, &event, payload);
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
async fn add_fault(state: Sim, body: Bytes) -> Answer {
    let fault = Fault::parse(state.next_id(), &json_body(&body)?)?;
    state.faults.lock().unwrap().push(fault.clone());
    Ok(HttpResponse::Created().json(fault))
}

async fn clear_faults(state: Sim) -> HttpResponse {
    state.faults.lock().unwrap().clear();
    HttpResponse::NoContent().finish()
}

async fn remove_fault(state: Sim, id: web::Path<u64>) -> Answer {
    let mut faults = state.faults.lock().unwrap();
    let before = faults.len();
    faults.retain(|f| f.id != *id);
    if faults.len() == before {
        return Err(SimError::not_found(format!("no fault {id}")));
    }
    Ok(HttpResponse::NoContent().finish())
}

async fn reset(state: Sim) -> HttpResponse {
    state.reset();
    HttpResponse::Ok().json(json!({"reset": true}))
}
