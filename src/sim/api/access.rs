//! How a call reaches its session: 404 when there is none, the engine's 422 when its status
//! does not allow the call, and the engine's wait for the status before that 422.

use crate::sim::error::{SimError, SimResult};
use crate::sim::state::{Session, SimState, Status};
use actix_web::http::StatusCode;
use actix_web::web;
use serde_json::json;
use std::time::Duration;

/// The engine's poll interval while it waits for a status.
const STATUS_POLL: Duration = Duration::from_millis(500);

pub fn session_missing(name: &str) -> SimError {
    SimError::not_found(format!("Session \"{name}\" does not exist"))
}

/// The engine's 422 for a call the session's status does not allow: an object, verbatim, with
/// no `message` (ENGINE.md §1, "Working" guard and error body with an object message; B1).
pub fn status_mismatch(session: &Session, expected: Status) -> SimError {
    SimError::Verbatim(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({
            "error": "Session status is not as expected. Try again later or restart the session",
            "session": session.name,
            "status": session.status.as_str(),
            "expected": [expected.as_str()],
        }),
    )
}

/// Runs `f` on the named session under the lock (404 when there is none).
pub fn with_session<R>(
    state: &SimState,
    name: &str,
    f: impl FnOnce(&mut Session) -> SimResult<R>,
) -> SimResult<R> {
    let mut sessions = state.sessions.lock().unwrap();
    let session = sessions
        .get_mut(name)
        .ok_or_else(|| session_missing(name))?;
    f(session)
}

/// As `with_session`, for a session that must be in `expected` (422 otherwise).
pub fn with_session_in<R>(
    state: &SimState,
    name: &str,
    expected: Status,
    f: impl FnOnce(&mut Session) -> SimResult<R>,
) -> SimResult<R> {
    with_session(state, name, |session| {
        if session.status != expected {
            return Err(status_mismatch(session, expected));
        }
        f(session)
    })
}

/// As `with_session_in`, after waiting for the status as the engine does.
pub async fn await_session_in<R>(
    state: &SimState,
    name: &str,
    expected: Status,
    f: impl FnOnce(&mut Session) -> SimResult<R>,
) -> SimResult<R> {
    await_status(state, name, expected).await;
    with_session_in(state, name, expected, f)
}

/// A call on one item of a WORKING session (`/sessions/{session}/groups/{groupId}` ...): `f`
/// gets the session and the item's id.
pub async fn await_working_item<R>(
    state: &SimState,
    path: web::Path<(String, String)>,
    f: impl FnOnce(&mut Session, &str) -> SimResult<R>,
) -> SimResult<R> {
    let (session, id) = path.into_inner();
    await_session_in(state, &session, Status::Working, |s| f(s, &id)).await
}

/// Waits, up to `SimOptions::status_wait`, for the session to reach `expected`, polling every
/// 0.5 s as the engine does before its 422 (ENGINE.md §1, "Working" guard: 5 s). A missing
/// session, or no wait configured, returns at once.
pub async fn await_status(state: &SimState, name: &str, expected: Status) {
    let deadline = tokio::time::Instant::now() + state.options.status_wait;
    loop {
        let current = state.sessions.lock().unwrap().get(name).map(|s| s.status);
        let now = tokio::time::Instant::now();
        if current.is_none_or(|s| s == expected) || now >= deadline {
            return;
        }
        tokio::time::sleep((deadline - now).min(STATUS_POLL)).await;
    }
}
