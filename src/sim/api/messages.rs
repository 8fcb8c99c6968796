//! The twelve message calls (`/v1/sendText` ...). A send answers 201 with the message, then
//! fires `message.any` and `message.ack`. sendSeen and typing send nothing, so they fire no
//! message events (ENGINE.md §4 rows 21-23; B2): typing answers `{"result": true}` and sendSeen
//! 201 with no body, as the engine's WEBJS does.

use super::access::await_session_in;
use super::reply::{created, done};
use crate::sim::body::{json_body, optional, present, required};
use crate::sim::chat::{self, chat_id, message_id, ChatServer, ACK_SERVER};
use crate::sim::error::{SimError, SimResult};
use crate::sim::state::{Session, SimState, Status};
use crate::sim::webhooks::emit;
use actix_web::{web, HttpResponse};
use bytes::Bytes;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendKind {
    Text,
    Image,
    File,
    Video,
    Voice,
    Location,
    ContactVcard,
    Poll,
    Reply,
    Seen,
    StartTyping,
    StopTyping,
}

/// What a call does once its fields are read.
enum Act {
    /// Sends a message with this body, carrying media or not.
    Send {
        text: String,
        media: bool,
    },
    /// Shows this presence in the chat.
    Typing(&'static str),
    Seen,
}

impl SendKind {
    pub const ALL: [SendKind; 12] = [
        SendKind::Text,
        SendKind::Image,
        SendKind::File,
        SendKind::Video,
        SendKind::Voice,
        SendKind::Location,
        SendKind::ContactVcard,
        SendKind::Poll,
        SendKind::Reply,
        SendKind::Seen,
        SendKind::StartTyping,
        SendKind::StopTyping,
    ];

    pub fn path(self) -> &'static str {
        match self {
            SendKind::Text => "/sendText",
            SendKind::Image => "/sendImage",
            SendKind::File => "/sendFile",
            SendKind::Video => "/sendVideo",
            SendKind::Voice => "/sendVoice",
            SendKind::Location => "/sendLocation",
            SendKind::ContactVcard => "/sendContactVcard",
            SendKind::Poll => "/sendPoll",
            SendKind::Reply => "/reply",
            SendKind::Seen => "/sendSeen",
            SendKind::StartTyping => "/startTyping",
            SendKind::StopTyping => "/stopTyping",
        }
    }

    /// Checks the call's own fields.
    fn read(self, body: &Value) -> SimResult<Act> {
        let text = |text: String| Act::Send { text, media: false };
        Ok(match self {
            // `reply_to` is optional (ENGINE.md §4 row 20: MessageReplyRequest extends
            // MessageTextRequest; A4).
            SendKind::Text | SendKind::Reply => text(required(body, "text")?),
            SendKind::Image | SendKind::File | SendKind::Video | SendKind::Voice => {
                read_file(body)?;
                let caption = optional(body, "caption")?.unwrap_or_default();
                Act::Send {
                    text: caption,
                    media: true,
                }
            }
            SendKind::Location => {
                read_position(body)?;
                text(optional(body, "title")?.unwrap_or_default())
            }
            SendKind::ContactVcard => match present(body, "contacts")? {
                Value::Array(items) if !items.is_empty() => text(String::new()),
                _ => return Err(SimError::bad_request("contacts must be a non-empty array")),
            },
            SendKind::Poll => text(read_poll(body)?),
            SendKind::Seen => Act::Seen,
            SendKind::StartTyping => Act::Typing("typing"),
            SendKind::StopTyping => Act::Typing("paused"),
        })
    }
}

/// `file` with a `url` or base64 `data`.
fn read_file(body: &Value) -> SimResult<()> {
    let file = present(body, "file")?;
    let has = |k: &str| {
        file.get(k)
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty())
    };
    if !file.is_object() || !(has("url") || has("data")) {
        return Err(SimError::bad_request("file.url or file.data is required"));
    }
    Ok(())
}

fn read_position(body: &Value) -> SimResult<()> {
    for (name, limit) in [("latitude", 90.0), ("longitude", 180.0)] {
        match present(body, name)?.as_f64() {
            Some(v) if v.abs() <= limit => {}
            _ => {
                return Err(SimError::bad_request(format!(
                    "{name} must be a number from -{limit} to {limit}"
                )))
            }
        }
    }
    Ok(())
}

/// The poll's name, which becomes the message's body.
fn read_poll(body: &Value) -> SimResult<String> {
    let poll = present(body, "poll")?;
    let name =
        required(&poll, "name").map_err(|_| SimError::bad_request("poll.name is required"))?;
    match poll.get("options") {
        Some(Value::Array(o)) if !o.is_empty() => Ok(name),
        _ => Err(SimError::bad_request("poll.options is required")),
    }
}

pub async fn send(state: web::Data<SimState>, kind: SendKind, body: Bytes) -> SimResult {
    let body = json_body(&body)?;
    let chat = chat_id(&required(&body, "chatId")?)?;
    let act = kind.read(&body)?;
    let session = optional(&body, "session")?.unwrap_or_else(|| "default".into());
    await_session_in(&state, &session, Status::Working, |s| match act {
        Act::Typing(presence) => {
            s.chat_presence.insert(chat, presence.into());
            created(done())
        }
        Act::Seen => Ok(HttpResponse::Created().finish()),
        Act::Send { text, media } => created(send_message(&state, s, &chat, &text, media)),
    })
    .await
}

/// Fires the message's events, keeps it for a channel's preview, and gives it.
fn send_message(state: &SimState, s: &mut Session, chat: &str, text: &str, media: bool) -> Value {
    let me = s.me_id();
    let id = message_id(true, chat);
    let message = chat::message(&id, true, &me, chat, text, media);
    emit(state, s, "message.any", message.clone());
    emit(
        state,
        s,
        "message.ack",
        chat::ack(&id, &me, chat, ACK_SERVER),
    );
    if ChatServer::of(chat) == Some(ChatServer::Channel) {
        if let Some(channel) = s.channels.get_mut(chat) {
            channel.messages.push(message.clone());
        }
    }
    message
}
