//! The seed's endpoints under `/v1`, stateful per session. Validation comes first (400 naming
//! the field), then the session (404), then its status (422 naming it, as WAHA answers).

use super::lifecycle;
use super::qr;
use super::state::{Session, SimState, Status};
use super::webhooks::Registration;
use crate::error::ApiError;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use bytes::Bytes;
use rand::Rng;
use serde_json::{json, Value};
use std::collections::HashMap;

type Sim = web::Data<SimState>;
type Answer = Result<HttpResponse, ApiError>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    use web::{delete, get, post, put, resource};
    // Fixed paths before the `{session}` patterns they would otherwise fall into.
    cfg.service(
        resource("/sessions")
            .route(get().to(list_sessions))
            .route(post().to(create_session)),
    )
    .service(resource("/sessions/start").route(post().to(start_session)))
    .service(resource("/sessions/stop").route(post().to(stop_session)))
    .service(resource("/sessions/logout").route(post().to(logout_session)))
    .service(
        resource("/sessions/{session}")
            .route(get().to(get_session))
            .route(delete().to(delete_session)),
    )
    .service(resource("/{session}/auth/qr").route(get().to(qr_code)))
    .service(resource("/{session}/auth/pairing-code").route(get().to(pairing_code)));
    for kind in SendKind::ALL {
        cfg.service(resource(kind.path()).route(
            post().to(move |state: Sim, body: Bytes| async move { send(state, kind, body).await }),
        ));
    }
    cfg.service(
        resource("/sessions/{session}/webhooks")
            .route(post().to(add_webhook))
            .route(delete().to(delete_webhooks)),
    )
    .service(
        resource("/sessions/{session}/groups")
            .route(get().to(list_groups))
            .route(post().to(create_group)),
    )
    .service(
        resource("/sessions/{session}/groups/{groupId}")
            .route(get().to(get_group))
            .route(delete().to(delete_group)),
    )
    .service(resource("/sessions/{session}/groups/{groupId}/leave").route(post().to(leave_group)))
    .service(
        resource("/sessions/{session}/groups/{groupId}/subject").route(put().to(
            |s: Sim, p: web::Path<(String, String)>, b: Bytes| update_group(s, p, b, "subject"),
        )),
    )
    .service(
        resource("/sessions/{session}/groups/{groupId}/description").route(put().to(
            |s: Sim, p: web::Path<(String, String)>, b: Bytes| update_group(s, p, b, "description"),
        )),
    );
    for (path, action) in [
        (
            "/sessions/{session}/groups/{groupId}/participants/add",
            "add",
        ),
        (
            "/sessions/{session}/groups/{groupId}/participants/remove",
            "remove",
        ),
        (
            "/sessions/{session}/groups/{groupId}/admin/promote",
            "promote",
        ),
        (
            "/sessions/{session}/groups/{groupId}/admin/demote",
            "demote",
        ),
    ] {
        cfg.service(resource(path).route(post().to(
            move |s: Sim, p: web::Path<(String, String)>, b: Bytes| participants(s, p, b, action),
        )));
    }
    cfg.service(
        resource("/sessions/{session}/channels")
            .route(get().to(list_channels))
            .route(post().to(create_channel)),
    )
    .service(
        resource("/sessions/{session}/channels/{channelId}")
            .route(get().to(get_channel))
            .route(delete().to(delete_channel)),
    )
    .service(
        resource("/sessions/{session}/channels/{channelId}/messages/preview")
            .route(get().to(preview_channel)),
    )
    .service(resource("/contacts/check-exists").route(get().to(check_exists)))
    .service(
        resource("/sessions/{session}/presence")
            .route(get().to(get_presence))
            .route(post().to(set_presence)),
    );
}

pub async fn unknown_route(req: HttpRequest) -> Answer {
    Err(ApiError::not_found(format!(
        "Cannot {} {}",
        req.method(),
        req.path()
    )))
}

// ---- Helpers --------------------------------------------------------------------------------

/// The JSON body; an absent body reads as `{}` (the seed's create-session call sends none).
pub fn json_body(body: &Bytes) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(ApiError::bad_request("body must be a JSON object")),
        Err(e) => Err(ApiError::bad_request(format!("malformed JSON: {e}"))),
    }
}

/// A required non-empty string field: "chatId is required" when absent.
pub fn required(body: &Value, name: &str) -> Result<String, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Err(ApiError::bad_request(format!("{name} is required"))),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(ApiError::bad_request(format!("{name} is required")))
        }
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ApiError::bad_request(format!("{name} must be a string"))),
    }
}

fn optional(body: &Value, name: &str) -> Result<Option<String>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::bad_request(format!("{name} must be a string"))),
    }
}

fn present(body: &Value, name: &str) -> Result<Value, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Err(ApiError::bad_request(format!("{name} is required"))),
        Some(v) => Ok(v.clone()),
    }
}

pub fn session_missing(name: &str) -> ApiError {
    ApiError::not_found(format!("Session \"{name}\" does not exist"))
}

/// Runs `f` on the named session under the lock (404 when there is none).
pub fn with_session<R>(
    state: &SimState,
    name: &str,
    f: impl FnOnce(&mut Session) -> Result<R, ApiError>,
) -> Result<R, ApiError> {
    let mut sessions = state.sessions.lock().unwrap();
    let session = sessions
        .get_mut(name)
        .ok_or_else(|| session_missing(name))?;
    f(session)
}

/// WAHA's 422 for a call the session's status does not allow, naming the status.
pub fn require_status(session: &Session, expected: Status) -> Result<(), ApiError> {
    if session.status == expected {
        return Ok(());
    }
    Err(ApiError::unprocessable(format!(
        "Session status is not as expected. Try again later or restart the session. \
         Session: \"{}\", status: {}, expected: {}",
        session.name,
        session.status.as_str(),
        expected.as_str()
    )))
}

/// A chat id as the upstream reads it: a bare phone number becomes `<digits>@c.us`.
pub fn chat_id(raw: &str) -> Result<String, ApiError> {
    const SERVERS: &[&str] = &["c.us", "g.us", "newsletter", "s.whatsapp.net", "lid"];
    let raw = raw.trim();
    let invalid = || ApiError::bad_request(format!("chatId \"{raw}\" is not a valid chat id"));
    match raw.split_once('@') {
        Some((user, server)) if !user.is_empty() && SERVERS.contains(&server) => Ok(raw.into()),
        Some(_) => Err(invalid()),
        None => {
            let digits = raw.trim_start_matches('+');
            if (5..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
                Ok(format!("{digits}@c.us"))
            } else {
                Err(invalid())
            }
        }
    }
}

/// WhatsApp Web's message id: `<fromMe>_<chat>_<3EB0 + 16 hex>`.
pub fn message_id(from_me: bool, chat: &str) -> String {
    let tail: u64 = rand::thread_rng().gen();
    format!("{from_me}_{chat}_3EB0{tail:016X}")
}

fn random_digits(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| char::from(b'0' + rng.gen_range(0..10)))
        .collect()
}

fn created(value: Value) -> Answer {
    Ok(HttpResponse::Created().json(value))
}

fn ok(value: Value) -> Answer {
    Ok(HttpResponse::Ok().json(value))
}

fn done() -> Value {
    json!({"result": true})
}

// ---- Sessions -------------------------------------------------------------------------------

async fn list_sessions(state: Sim) -> Answer {
    let sessions = state.sessions.lock().unwrap();
    ok(Value::Array(sessions.values().map(Session::info).collect()))
}

fn valid_session_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

async fn create_session(state: Sim, body: Bytes) -> Answer {
    let body = json_body(&body)?;
    let name = optional(&body, "name")?.unwrap_or_else(|| "default".into());
    if !valid_session_name(&name) {
        return Err(ApiError::bad_request(
            "name must be 1 to 64 of A-Z a-z 0-9 _ -",
        ));
    }
    let config = match body.get("config") {
        None | Some(Value::Null) => json!({}),
        Some(c @ Value::Object(_)) => c.clone(),
        Some(_) => return Err(ApiError::bad_request("config must be an object")),
    };
    // WAHA starts a new session unless told not to.
    let start = match body.get("start") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::bad_request("start must be a boolean")),
    };
    let mut sessions = state.sessions.lock().unwrap();
    if sessions.contains_key(&name) {
        return Err(ApiError::conflict(format!(
            "Session \"{name}\" already exists"
        )));
    }
    let mut session = Session::new(name.clone(), config);
    let answer = if start {
        lifecycle::start(&state, &mut session);
        // The upstream answers as the start begins.
        let mut info = session.info();
        info["status"] = json!("STARTING");
        info
    } else {
        session.info()
    };
    sessions.insert(name, session);
    created(answer)
}

async fn get_session(state: Sim, path: web::Path<String>) -> Answer {
    with_session(&state, &path, |s| ok(s.info()))
}

async fn delete_session(state: Sim, path: web::Path<String>) -> Answer {
    let mut sessions = state.sessions.lock().unwrap();
    let session = sessions
        .get_mut(path.as_str())
        .ok_or_else(|| session_missing(&path))?;
    lifecycle::stop(&state, session);
    sessions.remove(path.as_str());
    Ok(HttpResponse::Ok().finish())
}

async fn start_session(state: Sim, body: Bytes) -> Answer {
    let name = required(&json_body(&body)?, "name")?;
    with_session(&state, &name, |s| {
        let was_running = matches!(
            s.status,
            Status::Starting | Status::ScanQrCode | Status::Working
        );
        lifecycle::start(&state, s);
        let mut info = s.info();
        if !was_running {
            info["status"] = json!("STARTING");
        }
        created(info)
    })
}

async fn stop_session(state: Sim, body: Bytes) -> Answer {
    let name = required(&json_body(&body)?, "name")?;
    with_session(&state, &name, |s| {
        lifecycle::stop(&state, s);
        created(s.info())
    })
}

async fn logout_session(state: Sim, body: Bytes) -> Answer {
    let name = required(&json_body(&body)?, "name")?;
    with_session(&state, &name, |s| {
        lifecycle::logout(&state, s);
        created(s.info())
    })
}

async fn qr_code(
    state: Sim,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> Answer {
    let format = query.get("format").map(String::as_str).unwrap_or("image");
    if !matches!(format, "image" | "binary" | "raw") {
        return Err(ApiError::bad_request(
            "format must be one of image, binary, raw",
        ));
    }
    let value = with_session(&state, &path, |s| {
        require_status(s, Status::ScanQrCode)?;
        let index = s.qr_since.and_then(|since| state.qr_index(since));
        let Some(index) = index else {
            state.set_status(s, Status::Failed);
            return Err(require_status(s, Status::ScanQrCode).unwrap_err());
        };
        lifecycle::code_fetched(&state, s);
        Ok(qr::raw_value(&s.name, s.generation, index))
    })?;
    if format == "raw" {
        return ok(json!({"value": value}));
    }
    let png = qr::png(&value).map_err(ApiError::internal)?;
    let wants_json = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    if wants_json {
        let data = base64::engine::general_purpose::STANDARD.encode(&png);
        return ok(json!({"mimetype": "image/png", "data": data}));
    }
    Ok(HttpResponse::Ok().content_type("image/png").body(png))
}

async fn pairing_code(
    state: Sim,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> Answer {
    let phone = query
        .get("phoneNumber")
        .map(|p| p.trim().trim_start_matches('+').to_owned())
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::bad_request("phoneNumber is required"))?;
    if !(5..=20).contains(&phone.len()) || !phone.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request(
            "phoneNumber must be digits with the country code",
        ));
    }
    with_session(&state, &path, |s| {
        require_status(s, Status::ScanQrCode)?;
        s.pairing_phone = Some(phone);
        lifecycle::code_fetched(&state, s);
        const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTVWXYZ0123456789";
        let mut rng = rand::thread_rng();
        let mut code: String = (0..8)
            .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
            .collect();
        code.insert(4, '-');
        ok(json!({"code": code}))
    })
}

// ---- Messages -------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendKind {
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

impl SendKind {
    const ALL: [SendKind; 12] = [
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

    fn path(self) -> &'static str {
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

    /// Checks the call's own fields; gives the message's `body` and whether it carries media.
    fn read(self, body: &Value) -> Result<(String, bool), ApiError> {
        match self {
            SendKind::Text => Ok((required(body, "text")?, false)),
            SendKind::Reply => {
                required(body, "reply_to")?;
                Ok((required(body, "text")?, false))
            }
            SendKind::Image | SendKind::File | SendKind::Video | SendKind::Voice => {
                let file = present(body, "file")?;
                let has = |k: &str| {
                    file.get(k)
                        .and_then(Value::as_str)
                        .is_some_and(|v| !v.is_empty())
                };
                if !file.is_object() || !(has("url") || has("data")) {
                    return Err(ApiError::bad_request("file.url or file.data is required"));
                }
                Ok((optional(body, "caption")?.unwrap_or_default(), true))
            }
            SendKind::Location => {
                for (name, limit) in [("latitude", 90.0), ("longitude", 180.0)] {
                    let value = present(body, name)?;
                    match value.as_f64() {
                        Some(v) if v.abs() <= limit => {}
                        _ => {
                            return Err(ApiError::bad_request(format!(
                                "{name} must be a number from -{limit} to {limit}"
                            )))
                        }
                    }
                }
                Ok((optional(body, "title")?.unwrap_or_default(), false))
            }
            SendKind::ContactVcard => match present(body, "contacts")? {
                Value::Array(items) if !items.is_empty() => Ok((String::new(), false)),
                _ => Err(ApiError::bad_request("contacts must be a non-empty array")),
            },
            SendKind::Poll => {
                let poll = present(body, "poll")?;
                let name = required(&poll, "name")
                    .map_err(|_| ApiError::bad_request("poll.name is required"))?;
                match poll.get("options") {
                    Some(Value::Array(o)) if !o.is_empty() => Ok((name, false)),
                    _ => Err(ApiError::bad_request("poll.options is required")),
                }
            }
            SendKind::Seen | SendKind::StartTyping | SendKind::StopTyping => {
                Ok((String::new(), false))
            }
        }
    }
}

/// All twelve message calls: 201 with the message, then `message.any` and `message.ack`.
async fn send(state: Sim, kind: SendKind, body: Bytes) -> Answer {
    let body = json_body(&body)?;
    let chat = chat_id(&required(&body, "chatId")?)?;
    let (text, has_media) = kind.read(&body)?;
    let session_name = optional(&body, "session")?.unwrap_or_else(|| "default".into());
    with_session(&state, &session_name, |s| {
        require_status(s, Status::Working)?;
        match kind {
            SendKind::StartTyping => {
                s.chat_presence.insert(chat.clone(), "typing".into());
            }
            SendKind::StopTyping => {
                s.chat_presence.insert(chat.clone(), "paused".into());
            }
            _ => {}
        }
        let me = s.me_id();
        let message = json!({
            "id": message_id(true, &chat),
            "timestamp": chrono::Utc::now().timestamp(),
            "from": me,
            "fromMe": true,
            "to": chat,
            "body": text,
            "hasMedia": has_media,
            "ack": 0,
        });
        state.emit(s, "message.any", message.clone());
        state.emit(
            s,
            "message.ack",
            json!({
                "id": message["id"], "from": me, "fromMe": true, "to": chat,
                "participant": null, "ack": 1, "ackName": "SERVER",
            }),
        );
        if chat.ends_with("@newsletter") {
            if let Some(channel) = s.channels.get_mut(&chat) {
                if let Some(list) = channel["messages"].as_array_mut() {
                    list.push(message.clone());
                }
            }
        }
        created(message)
    })
}

// ---- Webhooks -------------------------------------------------------------------------------

async fn add_webhook(state: Sim, path: web::Path<String>, body: Bytes) -> Answer {
    let body = json_body(&body)?;
    let registration = Registration::parse(state.next_id(), &body)?;
    with_session(&state, &path, |s| {
        let view = registration.view();
        // One registration per URL: registering it again replaces it.
        s.webhooks.retain(|w| w.url != registration.url);
        s.webhooks.push(registration);
        created(view)
    })
}

async fn delete_webhooks(
    state: Sim,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
    body: Bytes,
) -> Answer {
    let body = json_body(&body)?;
    let url = match query.get("webhookUrl") {
        Some(u) => Some(u.clone()),
        None => optional(&body, "webhookUrl")?,
    };
    with_session(&state, &path, |s| {
        match url {
            Some(url) => {
                let before = s.webhooks.len();
                s.webhooks.retain(|w| w.url != url);
                if s.webhooks.len() == before {
                    return Err(ApiError::not_found(format!(
                        "Webhook \"{url}\" is not registered"
                    )));
                }
            }
            None => s.webhooks.clear(),
        }
        Ok(HttpResponse::Ok().finish())
    })
}

// ---- Groups ---------------------------------------------------------------------------------

fn working_session<R>(
    state: &SimState,
    name: &str,
    f: impl FnOnce(&mut Session) -> Result<R, ApiError>,
) -> Result<R, ApiError> {
    with_session(state, name, |s| {
        require_status(s, Status::Working)?;
        f(s)
    })
}

fn group_missing(id: &str) -> ApiError {
    ApiError::not_found(format!("Group \"{id}\" not found"))
}

fn participant_ids(body: &Value) -> Result<Vec<String>, ApiError> {
    let bad = || ApiError::bad_request("participants must be a non-empty array of {id}");
    let Some(items) = present(body, "participants")?.as_array().cloned() else {
        return Err(bad());
    };
    if items.is_empty() {
        return Err(bad());
    }
    items
        .iter()
        .map(|p| {
            p.get("id")
                .and_then(Value::as_str)
                .ok_or_else(bad)
                .and_then(chat_id)
        })
        .collect()
}

async fn list_groups(state: Sim, path: web::Path<String>) -> Answer {
    working_session(&state, &path, |s| {
        ok(Value::Array(s.groups.values().cloned().collect()))
    })
}

async fn create_group(state: Sim, path: web::Path<String>, body: Bytes) -> Answer {
    let body = json_body(&body)?;
    let subject = required(&body, "name")?;
    let members = participant_ids(&body)?;
    working_session(&state, &path, |s| {
        let id = format!("120363{}@g.us", random_digits(12));
        let me = s.me_id();
        let mut participants = vec![json!({"id": me, "isAdmin": true, "isSuperAdmin": true})];
        participants.extend(
            members
                .iter()
                .filter(|m| **m != me)
                .map(|m| json!({"id": m, "isAdmin": false, "isSuperAdmin": false})),
        );
        let group = json!({
            "id": id, "subject": subject, "description": "", "owner": me,
            "creation": chrono::Utc::now().timestamp(), "participants": participants,
        });
        s.groups.insert(id.clone(), group.clone());
        state.emit(s, "group.v2.join", json!({"group": group}));
        created(group)
    })
}

async fn get_group(state: Sim, path: web::Path<(String, String)>) -> Answer {
    let (session, id) = path.into_inner();
    working_session(&state, &session, |s| match s.groups.get(&id) {
        Some(group) => ok(group.clone()),
        None => Err(group_missing(&id)),
    })
}

async fn delete_group(state: Sim, path: web::Path<(String, String)>) -> Answer {
    let (session, id) = path.into_inner();
    working_session(&state, &session, |s| {
        s.groups.remove(&id).ok_or_else(|| group_missing(&id))?;
        Ok(HttpResponse::Ok().finish())
    })
}

async fn leave_group(state: Sim, path: web::Path<(String, String)>) -> Answer {
    let (session, id) = path.into_inner();
    working_session(&state, &session, |s| {
        s.groups.remove(&id).ok_or_else(|| group_missing(&id))?;
        state.emit(s, "group.v2.leave", json!({"group": {"id": id}}));
        created(done())
    })
}

async fn update_group(
    state: Sim,
    path: web::Path<(String, String)>,
    body: Bytes,
    field: &'static str,
) -> Answer {
    let (session, id) = path.into_inner();
    let body = json_body(&body)?;
    let value = if field == "subject" {
        required(&body, field)?
    } else {
        optional(&body, field)?
            .ok_or_else(|| ApiError::bad_request(format!("{field} is required")))?
    };
    working_session(&state, &session, |s| {
        let group = s.groups.get_mut(&id).ok_or_else(|| group_missing(&id))?;
        group[field] = json!(value);
        let group = group.clone();
        state.emit(s, "group.v2.update", json!({"group": group}));
        ok(done())
    })
}

async fn participants(
    state: Sim,
    path: web::Path<(String, String)>,
    body: Bytes,
    action: &'static str,
) -> Answer {
    let (session, id) = path.into_inner();
    let members = participant_ids(&json_body(&body)?)?;
    working_session(&state, &session, |s| {
        let group = s.groups.get_mut(&id).ok_or_else(|| group_missing(&id))?;
        let list = group["participants"].as_array_mut().expect("participants");
        for member in &members {
            let at = list.iter().position(|p| p["id"] == json!(member));
            match (action, at) {
                ("add", None) => {
                    list.push(json!({"id": member, "isAdmin": false, "isSuperAdmin": false}))
                }
                ("remove", Some(i)) => {
                    list.remove(i);
                }
                ("promote", Some(i)) => list[i]["isAdmin"] = json!(true),
                ("demote", Some(i)) => list[i]["isAdmin"] = json!(false),
                _ => {}
            }
        }
        state.emit(
            s,
            "group.v2.participants",
            json!({"group": {"id": id}, "type": action, "participants": members
                .iter().map(|m| json!({"id": m})).collect::<Vec<_>>()}),
        );
        created(done())
    })
}

// ---- Channels -------------------------------------------------------------------------------

fn channel_missing(id: &str) -> ApiError {
    ApiError::not_found(format!("Channel \"{id}\" not found"))
}

/// A channel as answered (the messages sent to it are kept for the preview, not shown here).
fn channel_view(channel: &Value) -> Value {
    let mut view = channel.clone();
    if let Some(o) = view.as_object_mut() {
        o.remove("messages");
    }
    view
}

async fn list_channels(state: Sim, path: web::Path<String>) -> Answer {
    working_session(&state, &path, |s| {
        ok(Value::Array(
            s.channels.values().map(channel_view).collect(),
        ))
    })
}

async fn create_channel(state: Sim, path: web::Path<String>, body: Bytes) -> Answer {
    let body = json_body(&body)?;
    let name = required(&body, "name")?;
    let description = optional(&body, "description")?.unwrap_or_default();
    working_session(&state, &path, |s| {
        let id = format!("120363{}@newsletter", random_digits(12));
        let invite = format!("https://whatsapp.com/channel/0029Va{}", random_digits(16));
        let channel = json!({
            "id": id, "name": name, "description": description, "invite": invite,
            "role": "OWNER", "verified": false, "picture": null, "preview": null,
            "messages": [],
        });
        s.channels.insert(id, channel.clone());
        created(channel_view(&channel))
    })
}

async fn get_channel(state: Sim, path: web::Path<(String, String)>) -> Answer {
    let (session, id) = path.into_inner();
    working_session(&state, &session, |s| match s.channels.get(&id) {
        Some(c) => ok(channel_view(c)),
        None => Err(channel_missing(&id)),
    })
}

async fn delete_channel(state: Sim, path: web::Path<(String, String)>) -> Answer {
    let (session, id) = path.into_inner();
    working_session(&state, &session, |s| {
        s.channels.remove(&id).ok_or_else(|| channel_missing(&id))?;
        Ok(HttpResponse::Ok().finish())
    })
}

async fn preview_channel(state: Sim, path: web::Path<(String, String)>) -> Answer {
    let (session, id) = path.into_inner();
    working_session(&state, &session, |s| match s.channels.get(&id) {
        Some(c) => ok(c["messages"].clone()),
        None => Err(channel_missing(&id)),
    })
}

// ---- Contacts and presence ------------------------------------------------------------------

/// Numbers of 7 to 15 digits are on WhatsApp, except those ending in `000` (so tests can ask
/// for a number that is not).
async fn check_exists(state: Sim, query: web::Query<HashMap<String, String>>) -> Answer {
    let phone = query
        .get("phone")
        .map(|p| p.trim().trim_start_matches('+').to_owned())
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::bad_request("phone is required"))?;
    let digits = phone.split('@').next().unwrap_or_default().to_owned();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request(
            "phone must be digits with the country code",
        ));
    }
    let session = query
        .get("session")
        .cloned()
        .unwrap_or_else(|| "default".into());
    working_session(&state, &session, |_| {
        let exists = (7..=15).contains(&digits.len()) && !digits.ends_with("000");
        ok(json!({
            "numberExists": exists,
            "chatId": exists.then(|| format!("{digits}@c.us")),
        }))
    })
}

async fn set_presence(state: Sim, path: web::Path<String>, body: Bytes) -> Answer {
    let body = json_body(&body)?;
    let presence = required(&body, "presence")?;
    let chat = optional(&body, "chatId")?
        .map(|c| chat_id(&c))
        .transpose()?;
    match presence.as_str() {
        "online" | "offline" => {}
        "typing" | "recording" | "paused" if chat.is_some() => {}
        "typing" | "recording" | "paused" => {
            return Err(ApiError::bad_request(format!(
                "chatId is required for presence {presence}"
            )))
        }
        _ => {
            return Err(ApiError::bad_request(
                "presence must be one of online, offline, typing, recording, paused",
            ))
        }
    }
    working_session(&state, &path, |s| {
        match chat {
            Some(chat) if !matches!(presence.as_str(), "online" | "offline") => {
                s.chat_presence.insert(chat, presence);
            }
            _ => s.presence = presence,
        }
        created(done())
    })
}

async fn get_presence(state: Sim, path: web::Path<String>) -> Answer {
    working_session(&state, &path, |s| {
        let me = s.me_id();
        ok(Value::Array(
            s.chat_presence
                .iter()
                .map(|(chat, p)| {
                    json!({"id": chat, "presences": [
                        {"participant": me, "lastKnownPresence": p, "lastSeen": null}
                    ]})
                })
                .collect(),
        ))
    })
}
