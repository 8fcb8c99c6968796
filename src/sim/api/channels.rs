//! `/v1/sessions/{session}/channels`: a WORKING session's channels and their message preview.

use super::access::{await_session_in, await_working_item};
use super::reply::{created, ok};
use crate::sim::body::{json_body, optional, required};
use crate::sim::chat::{random_digits, ChatServer};
use crate::sim::error::{SimError, SimResult};
use crate::sim::state::{Channel, Session, SimState, Status};
use actix_web::{web, HttpResponse};
use bytes::Bytes;
use serde_json::json;

type Sim = web::Data<SimState>;
type ChannelPath = web::Path<(String, String)>;

pub async fn list(state: Sim, path: web::Path<String>) -> SimResult {
    await_session_in(&state, &path, Status::Working, |s| {
        ok(s.channels.values().collect::<Vec<_>>())
    })
    .await
}

pub async fn create(state: Sim, path: web::Path<String>, body: Bytes) -> SimResult {
    let body = json_body(&body)?;
    let name = required(&body, "name")?;
    let description = optional(&body, "description")?.unwrap_or_default();
    await_session_in(&state, &path, Status::Working, |s| {
        let channel = Channel {
            id: ChatServer::Channel.new_id(),
            name,
            description,
            invite: format!(
                "https://www.whatsapp.com/channel/0029Va{}",
                random_digits(16)
            ),
            role: "OWNER",
            verified: false,
            subscribers_count: 0,
            picture: None,
            preview: None,
            messages: Vec::new(),
        };
        let answer = created(&channel);
        s.channels.insert(channel.id.clone(), channel);
        answer
    })
    .await
}

/// The channel named by its `@newsletter` id, its invite code, or its invite link (the last
/// path segment is used: ENGINE.md §6 rows 37 and 39).
fn find_channel<'a>(session: &'a Session, id: &str) -> SimResult<&'a Channel> {
    if let Some(channel) = session.channels.get(id) {
        return Ok(channel);
    }
    let code = id.trim_end_matches('/').rsplit('/').next().unwrap_or(id);
    session
        .channels
        .values()
        .find(|c| !code.is_empty() && c.invite.rsplit('/').next() == Some(code))
        .ok_or_else(|| SimError::not_found(format!("Channel \"{id}\" not found")))
}

pub async fn get(state: Sim, path: ChannelPath) -> SimResult {
    await_working_item(&state, path, |s, id| ok(find_channel(s, id)?)).await
}

pub async fn delete(state: Sim, path: ChannelPath) -> SimResult {
    await_working_item(&state, path, |s, id| {
        let key = find_channel(s, id)?.id.clone();
        s.channels.remove(&key);
        Ok(HttpResponse::Ok().finish())
    })
    .await
}

/// `[{message, reactions, viewCount}]` (ENGINE.md §6 row 39, `ChannelMessage`; A7).
pub async fn preview(state: Sim, path: ChannelPath) -> SimResult {
    await_working_item(&state, path, |s, id| {
        let messages = &find_channel(s, id)?.messages;
        ok(messages
            .iter()
            .map(|m| json!({"message": m, "reactions": {}, "viewCount": 0}))
            .collect::<Vec<_>>())
    })
    .await
}
