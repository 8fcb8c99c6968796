//! Session lifecycle moves that involve time: the QR codes' rotation (a new `SCAN_QR_CODE`
//! event per code, `FAILED` after the last one), the scan, and `--auto-scan`.
//!
//! Timers are plain tokio tasks on whatever runtime serves the request that armed them; each
//! remembers the session's generation and does nothing if the session moved on meanwhile.

use super::state::{phone_for, Me, Session, SimState, Status};
use std::sync::Arc;

/// STOPPED/FAILED -> STARTING -> SCAN_QR_CODE, or straight to WORKING when the session is
/// still logged in from an earlier scan (WAHA keeps the auth across stop/start).
pub fn start(state: &Arc<SimState>, session: &mut Session) {
    if matches!(
        session.status,
        Status::Starting | Status::ScanQrCode | Status::Working
    ) {
        return;
    }
    state.set_status(session, Status::Starting);
    if session.me.is_some() {
        state.set_status(session, Status::Working);
    } else {
        enter_scan(state, session);
    }
}

fn enter_scan(state: &Arc<SimState>, session: &mut Session) {
    let generation = state.set_status(session, Status::ScanQrCode);
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
                state.set_status(session, Status::Failed);
                return;
            }
            // A new code: the upstream says SCAN_QR_CODE again.
            state.emit(
                session,
                "session.status",
                serde_json::json!({"name": session.name, "status": "SCAN_QR_CODE"}),
            );
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
        id: format!("{phone}@c.us"),
        push_name: session.name.clone(),
    });
    state.set_status(session, Status::Working);
}

pub fn stop(state: &SimState, session: &mut Session) {
    if session.status != Status::Stopped {
        state.set_status(session, Status::Stopped);
    }
}

pub fn logout(state: &SimState, session: &mut Session) {
    session.me = None;
    session.pairing_phone = None;
    stop(state, session);
}
