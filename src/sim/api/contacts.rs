//! `/v1/contacts/check-exists` and `/v1/sessions/{session}/presence`.

use super::access::await_session_in;
use super::reply::{created, done, ok};
use crate::sim::body::{json_body, optional, phone, required};
use crate::sim::chat::{chat_id, ChatServer};
use crate::sim::error::{SimError, SimResult};
use crate::sim::state::{SimState, Status};
use actix_web::http::StatusCode;
use actix_web::web;
use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::HashMap;

type Sim = web::Data<SimState>;

/// Numbers of 7 to 15 digits are on WhatsApp, except those ending in `000` (so tests can ask
/// for a number that is not).
pub async fn check_exists(state: Sim, query: web::Query<HashMap<String, String>>) -> SimResult {
    let phone = phone(query.get("phone").map(String::as_str), "phone")?;
    let digits = phone.split('@').next().unwrap_or_default().to_owned();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SimError::bad_request(
            "phone must be digits with the country code",
        ));
    }
    let session = query
        .get("session")
        .cloned()
        .unwrap_or_else(|| "default".into());
    await_session_in(&state, &session, Status::Working, |_| {
        let exists = (7..=15).contains(&digits.len()) && !digits.ends_with("000");
        // `chatId` is omitted when the number is not on WhatsApp (ENGINE.md §7).
        if exists {
            ok(json!({"numberExists": true, "chatId": ChatServer::Contact.id(&digits)}))
        } else {
            ok(json!({"numberExists": false}))
        }
    })
    .await
}

pub async fn set_presence(state: Sim, path: web::Path<String>, body: Bytes) -> SimResult {
    let body = json_body(&body)?;
    let presence = required(&body, "presence")?;
    let chat = optional(&body, "chatId")?
        .map(|c| chat_id(&c))
        .transpose()?;
    check_presence_scope(&presence, chat.is_some())?;
    await_session_in(&state, &path, Status::Working, |s| {
        match chat {
            Some(chat) => {
                s.chat_presence.insert(chat, presence);
            }
            None => s.presence = presence,
        }
        created(done())
    })
    .await
}

/// `online` and `offline` are the session's own, the others are shown in one chat. The
/// engine's refusals here are `{detail}` objects (ENGINE.md §8 row 41).
fn check_presence_scope(presence: &str, in_chat: bool) -> SimResult<()> {
    let detail =
        |text: String| SimError::Verbatim(StatusCode::BAD_REQUEST, json!({"detail": text}));
    match (presence, in_chat) {
        ("online" | "offline", false) | ("typing" | "recording" | "paused", true) => Ok(()),
        ("online" | "offline", true) => Err(detail(format!(
            "'{presence}' presence works on the global scope and doesn't require 'chatId' field."
        ))),
        ("typing" | "recording" | "paused", false) => Err(detail(format!(
            "'{presence}' presence requires 'chatId' field."
        ))),
        _ => Err(SimError::bad_request(
            "presence must be one of online, offline, typing, recording, paused",
        )),
    }
}

pub async fn get_presence(state: Sim, path: web::Path<String>) -> SimResult {
    await_session_in(&state, &path, Status::Working, |s| {
        let me = s.me_id();
        let chats = s.chat_presence.iter().map(|(chat, p)| {
            json!({"id": chat, "presences": [
                {"participant": me, "lastKnownPresence": p, "lastSeen": null}
            ]})
        });
        ok(chats.collect::<Vec<Value>>())
    })
    .await
}
