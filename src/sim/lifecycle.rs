//! Session lifecycle moves that involve time: the QR codes' rotation (a new `SCAN_QR_CODE`
//! event per code, `FAILED` after the last one), the scan, and `--auto-scan`.
//!
//! Timers are plain tokio tasks on whatever runtime serves the request that armed them; each
//! remembers the session's generation and does nothing if the session moved on meanwhile.

use super::chat::ChatServer;
use super::state::{phone_for, Me, Session, SimState, Status};
use super::webhooks::emit;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

/// Moves the session to `status`, firing `session.status`, and resets what the new status
/// starts afresh (the run of QR codes, the presence). Returns the new generation.
pub fn set_status(state: &SimState, session: &mut Session, status: Status) -> u64 {
    session.status = status;
    session.generation += 1;
    if status == Status::ScanQrCode {
        session.qr_since = Some(Instant::now());
        session.qr_fetched = false;
    } else {
        session.qr_since = None;
    }
    session.presence = if status == Status::Working {
        "online"
    } else {
        "offline"
    }
    .into();
    emit_status(state, session, status);
    session.generation
}

fn emit_status(state: &SimState, session: &Session, status: Status) {
    let payload = json!({"name": session.name, "status": status.as_str()});
    emit(state, session, "session.status", payload);
}

/// STOPPED/FAILED -> STARTING -> SCAN_QR_CODE, or straight to WORKING when the session is
/// still logged in from an earlier scan (WAHA keeps the auth across stop/start).
pub fn start(state: &Arc<SimState>, session: &mut Session) {
    if matches!(
        session.status,
        Status::Starting | Status::ScanQrCode | Status::Working
    ) {
        return;
    }
    set_status(state, session, Status::Starting);
    if session.me.is_some() {
        set_status(state, session, Status::Working);
    } else {
        enter_scan(state, session);
    }
}

fn enter_scan(state: &Arc<SimState>, session: &mut Session) {
    let generation = set_status(state, session, Status::ScanQrCode);
    let (state, name) = (state.clone(), session.name.clone());
    tokio::spawn(async move {
        let mut index = 0;
        loop {
            tokio::time::sleep(state.qr_ttl(index)).await;
            index += 1;
            let mut sessions = state.sessions.lock().unwrap();
            let Some(session) = sessions.get_mut(&name) else {
                return;
            };
            if session.generation != generation {
                return;
            }
            if index >= state.options.max_qr_codes {
                set_status(&state, session, Status::Failed);
                return;
            }
            // A new code: the upstream says SCAN_QR_CODE again.
            emit_status(&state, session, Status::ScanQrCode);
        }
    });
}

/// The QR code or pairing code was fetched: with `--auto-scan`, the first fetch arms the scan.
pub fn code_fetched(state: &Arc<SimState>, session: &mut Session) {
    if session.qr_fetched {
        return;
    }
    session.qr_fetched = true;
    let Some(delay) = state.options.auto_scan else {
        return;
    };
    let (state, name, generation) = (state.clone(), session.name.clone(), session.generation);
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let mut sessions = state.sessions.lock().unwrap();
        if let Some(session) = sessions.get_mut(&name) {
            if session.generation == generation && session.status == Status::ScanQrCode {
                scan(&state, session);
            }
        }
    });
}

/// The phone scanned the code: WORKING as the account behind the pairing phone (or a stable
/// made-up one). No `AUTHENTICATED` event: the seed names it, the engine has no such status
/// (ENGINE.md §1 session status values, §10 item 4; B5).
pub fn scan(state: &SimState, session: &mut Session) {
    let phone = session
        .pairing_phone
        .clone()
        .unwrap_or_else(|| phone_for(&session.name));
    session.me = Some(Me {
        id: ChatServer::Contact.id(&phone),
        push_name: session.name.clone(),
    });
    set_status(state, session, Status::Working);
}

pub fn stop(state: &SimState, session: &mut Session) {
    if session.status != Status::Stopped {
        set_status(state, session, Status::Stopped);
    }
}

pub fn logout(state: &SimState, session: &mut Session) {
    session.me = None;
    session.pairing_phone = None;
    stop(state, session);
}
