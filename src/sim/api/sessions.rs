//! `/v1/sessions`: the sessions themselves, and the deprecated start, stop and logout calls.

use super::access::{session_missing, with_session};
use super::reply::{created, ok};
use crate::sim::body::{flag, json_body, object, optional, required};
use crate::sim::error::{SimError, SimResult};
use crate::sim::lifecycle;
use crate::sim::state::{Session, SimState, Status};
use actix_web::{web, HttpResponse};
use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::HashMap;

type Sim = web::Data<SimState>;

/// STOPPED sessions are listed only with `all=true` (ENGINE.md §2 row 1; B4). `all` is read
/// as the engine's `BooleanString` reads it; anything else is refused as its `IsBoolean` does.
pub async fn list(state: Sim, query: web::Query<HashMap<String, String>>) -> SimResult {
    let all = match query.get("all").map(String::as_str) {
        None | Some("false" | "False" | "0") => false,
        Some("true" | "True" | "1") => true,
        Some(_) => return Err(SimError::bad_request("all must be a boolean value")),
    };
    let sessions = state.sessions.lock().unwrap();
    ok(sessions
        .values()
        .filter(|s| all || s.status != Status::Stopped)
        .map(Session::info)
        .collect::<Vec<_>>())
}

fn valid_session_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub async fn create(state: Sim, body: Bytes) -> SimResult {
    let body = json_body(&body)?;
    let name = optional(&body, "name")?.unwrap_or_else(|| "default".into());
    if !valid_session_name(&name) {
        return Err(SimError::bad_request(
            "name must be 1 to 64 of A-Z a-z 0-9 _ -",
        ));
    }
    let config = object(&body, "config")?.unwrap_or_else(|| json!({}));
    // WAHA starts a new session unless told not to.
    let start = flag(&body, "start", true)?;
    let mut sessions = state.sessions.lock().unwrap();
    // The seed's 409 (the engine answers 422 here, ENGINE.md §1 "No 409"): the seed is the
    // authority for what a tenant sees, and docs/UPSTREAM.md states the choice.
    if sessions.contains_key(&name) {
        return Err(SimError::conflict(format!(
            "Session \"{name}\" already exists"
        )));
    }
    let mut session = Session::new(name.clone(), config);
    let answer = if start {
        lifecycle::start(&state, &mut session);
        as_starting(&session)
    } else {
        session.info()
    };
    sessions.insert(name, session);
    created(answer)
}

/// The upstream answers a start as it begins, whatever status the session reached since.
fn as_starting(session: &Session) -> Value {
    let mut info = session.info();
    info["status"] = json!(Status::Starting.as_str());
    info
}

pub async fn get(state: Sim, path: web::Path<String>) -> SimResult {
    with_session(&state, &path, |s| ok(s.info()))
}

pub async fn delete(state: Sim, path: web::Path<String>) -> SimResult {
    let mut sessions = state.sessions.lock().unwrap();
    let session = sessions
        .get_mut(path.as_str())
        .ok_or_else(|| session_missing(&path))?;
    lifecycle::stop(&state, session);
    sessions.remove(path.as_str());
    Ok(HttpResponse::Ok().finish())
}

/// The deprecated "upsert and start" (ENGINE.md §2 row 5): creates the session when it is
/// missing, replaces its config when one is given, and refuses one already running with 422.
pub async fn start(state: Sim, body: Bytes) -> SimResult {
    let body = json_body(&body)?;
    let name = required(&body, "name")?;
    let config = object(&body, "config")?;
    let mut sessions = state.sessions.lock().unwrap();
    let session = sessions
        .entry(name.clone())
        .or_insert_with(|| Session::new(name.clone(), json!({})));
    if matches!(
        session.status,
        Status::Starting | Status::ScanQrCode | Status::Working
    ) {
        return Err(SimError::unprocessable(format!(
            "Session '{name}' is already started."
        )));
    }
    if let Some(config) = config {
        session.config = config;
    }
    lifecycle::start(&state, session);
    created(as_starting(session))
}

/// The deprecated stop (ENGINE.md §2 row 6; B3): 201 with no body, whether or not the session
/// exists; `logout: true` also logs out and deletes the session.
pub async fn stop(state: Sim, body: Bytes) -> SimResult {
    let body = json_body(&body)?;
    let name = required(&body, "name")?;
    if flag(&body, "logout", false)? {
        remove_session(&state, &name);
    } else if let Some(s) = state.sessions.lock().unwrap().get_mut(&name) {
        lifecycle::stop(&state, s);
    }
    Ok(HttpResponse::Created().finish())
}

/// The deprecated logout (ENGINE.md §2 row 9; B3): stops, logs out and deletes the session;
/// 201 with no body, whether or not it existed.
pub async fn logout(state: Sim, body: Bytes) -> SimResult {
    let name = required(&json_body(&body)?, "name")?;
    remove_session(&state, &name);
    Ok(HttpResponse::Created().finish())
}

/// Stops (firing STOPPED) and forgets the session, if there is one.
fn remove_session(state: &SimState, name: &str) {
    let mut sessions = state.sessions.lock().unwrap();
    if let Some(session) = sessions.get_mut(name) {
        lifecycle::logout(state, session);
        sessions.remove(name);
    }
}
