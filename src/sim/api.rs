//! The seed's endpoints under `/v1`, stateful per session. Validation comes first (400 naming
//! the field), then the session (404), then its status (422 with the engine's object body).
//! Where the seed is silent the engine's behaviour is followed; each such place names the
//! ENGINE.md fact (or conformance item) it comes from.

use super::error::SimError;
use super::lifecycle;
use super::qr;
use super::state::{Session, SimState, Status};
use super::webhooks::Registration;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use bytes::Bytes;
use rand::Rng;
use serde_json::{json, Value};
use std::collections::HashMap;

type Sim = web::Data<SimState>;
type Answer = Result<HttpResponse, SimError>;

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
    .service(resource("/{session}/auth/pairing-code").route(get().to(pairing_code)))
    .service(resource("/{session}/auth/request-code").route(post().to(request_code)));
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
    Err(SimError::not_found(format!(
        "Cannot {} {}",
        req.method(),
        req.path()
    )))
}

// ---- Helpers --------------------------------------------------------------------------------

/// The JSON body; an absent body reads as `{}` (the seed's create-session call sends none).
pub fn json_body(body: &Bytes) -> Result<Value, SimError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(SimError::bad_request("body must be a JSON object")),
        Err(e) => Err(SimError::bad_request(format!("malformed JSON: {e}"))),
    }
}

/// A required non-empty string field: "chatId is required" when absent.
pub fn required(body: &Value, name: &str) -> Result<String, SimError> {
    match body.get(name) {
        None | Some(Value::Null) => Err(SimError::bad_request(format!("{name} is required"))),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(SimError::bad_request(format!("{name} is required")))
        }
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(SimError::bad_request(format!("{name} must be a string"))),
    }
}

fn optional(body: &Value, name: &str) -> Result<Option<String>, SimError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(SimError::bad_request(format!("{name} must be a string"))),
    }
}

fn present(body: &Value, name: &str) -> Result<Value, SimError> {
    match body.get(name) {
        None | Some(Value::Null) => Err(SimError::bad_request(format!("{name} is required"))),
        Some(v) => Ok(v.clone()),
    }
}

pub fn session_missing(name: &str) -> SimError {
    SimError::not_found(format!("Session \"{name}\" does not exist"))
}

/// Runs `f` on the named session under the lock (404 when there is none).
pub fn with_session<R>(
    state: &SimState,
    name: &str,
    f: impl FnOnce(&mut Session) -> Result<R, SimError>,
) -> Result<R, SimError> {
    let mut sessions = state.sessions.lock().unwrap();
    let session = sessions
        .get_mut(name)
        .ok_or_else(|| session_missing(name))?;
    f(session)
}

/// The engine's 422 for a call the session's status does not allow: an object, verbatim, with
/// no `message` (ENGINE.md §1, "Working" guard and error body with an object message; B1).
pub fn require_status(session: &Session, expected: Status) -> Result<(), SimError> {
    if session.status == expected {
        return Ok(());
    }
    Err(SimError::Verbatim(
        actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
        json!({
            "error": "Session status is not as expected. Try again later or restart the session",
            "session": session.name,
            "status": session.status.as_str(),
            "expected": [expected.as_str()],
        }),
    ))
}

/// Waits, up to `SimOptions::status_wait`, for the session to reach
/// `expected`, polling every 0.5 s as the engine does before its 422 (ENGINE.md §1, "Working"
/// guard: 5 s). A missing session, or no wait configured, returns at once.
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

/// The engine's poll interval while it waits for a status.
const STATUS_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// A chat id as the upstream reads it: a bare phone number becomes `<digits>@c.us`. Every
/// form of ENGINE.md §1 (chatId formats) is taken, `status@broadcast` included (A3).
pub fn chat_id(raw: &str) -> Result<String, SimError> {
    const SERVERS: &[&str] = &[
        "c.us",
        "g.us",
        "newsletter",
        "s.whatsapp.net",
        "lid",
        "broadcast",
    ];
    let raw = raw.trim();
    let invalid = || SimError::bad_request(format!("chatId \"{raw}\" is not a valid chat id"));
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

/// STOPPED sessions are listed only with `all=true` (ENGINE.md §2 row 1; B4). `all` is read
/// as the engine's `BooleanString` reads it; anything else is refused as its `IsBoolean` does.
async fn list_sessions(state: Sim, query: web::Query<HashMap<String, String>>) -> Answer {
    let all = match query.get("all").map(String::as_str) {
        None | Some("false" | "False" | "0") => false,
        Some("true" | "True" | "1") => true,
        Some(_) => return Err(SimError::bad_request("all must be a boolean value")),
    };
    let sessions = state.sessions.lock().unwrap();
    ok(Value::Array(
        sessions
            .values()
            .filter(|s| all || s.status != Status::Stopped)
            .map(Session::info)
            .collect(),
    ))
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
        return Err(SimError::bad_request(
            "name must be 1 to 64 of A-Z a-z 0-9 _ -",
        ));
    }
    let config = match body.get("config") {
        None | Some(Value::Null) => json!({}),
        Some(c @ Value::Object(_)) => c.clone(),
        Some(_) => return Err(SimError::bad_request("config must be an object")),
    };
    // WAHA starts a new session unless told not to.
    let start = match body.get("start") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(SimError::bad_request("start must be a boolean")),
    };
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

/// The deprecated "upsert and start" (ENGINE.md §2 row 5): creates the session when it is
/// missing, replaces its config when one is given, and refuses one already running with 422.
async fn start_session(state: Sim, body: Bytes) -> Answer {
    let body = json_body(&body)?;
    let name = required(&body, "name")?;
    let config = match body.get("config") {
        None | Some(Value::Null) => None,
        Some(c @ Value::Object(_)) => Some(c.clone()),
        Some(_) => return Err(SimError::bad_request("config must be an object")),
    };
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
    let mut info = session.info();
    info["status"] = json!("STARTING");
    created(info)
}

/// The deprecated stop (ENGINE.md §2 row 6; B3): 201 with no body, whether or not the session
/// exists; `logout: true` also logs out and deletes the session.
async fn stop_session(state: Sim, body: Bytes) -> Answer {
    let body = json_body(&body)?;
    let name = required(&body, "name")?;
    let logout = match body.get("logout") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(SimError::bad_request("logout must be a boolean")),
    };
    if logout {
        remove_session(&state, &name);
    } else if let Some(s) = state.sessions.lock().unwrap().get_mut(&name) {
        lifecycle::stop(&state, s);
    }
    Ok(HttpResponse::Created().finish())
}

/// The deprecated logout (ENGINE.md §2 row 9; B3): stops, logs out and deletes the session;
/// 201 with no body, whether or not it existed.
async fn logout_session(state: Sim, body: Bytes) -> Answer {
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

async fn qr_code(
    state: Sim,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> Answer {
    // Any value but `raw` gives the image, the seed's `binary` included (ENGINE.md §2 row 7).
    let format = query.get("format").map(String::as_str).unwrap_or("image");
    await_status(&state, &path, Status::ScanQrCode).await;
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
    let png = qr::png(&value).map_err(SimError::internal)?;
    let wants_json = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        // Exactly `application/json` (ENGINE.md §2 row 7, BufferResponseInterceptor): axios'
        // `application/json, text/plain, */*` gets the PNG.
        .is_some_and(|a| a.trim() == "application/json");
    if wants_json {
        let data = base64::engine::general_purpose::STANDARD.encode(&png);
        return ok(json!({"mimetype": "image/png", "data": data}));
    }
    Ok(HttpResponse::Ok().content_type("image/png").body(png))
}

/// The seed's `GET /auth/pairing-code?phoneNumber=`.
async fn pairing_code(
    state: Sim,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> Answer {
    await_status(&state, &path, Status::ScanQrCode).await;
    ok(pair(&state, &path, query.get("phoneNumber").cloned())?)
}

/// The engine's own `POST /auth/request-code {phoneNumber, method?}` (ENGINE.md §2 row 8):
/// 201 `{code}`.
async fn request_code(state: Sim, path: web::Path<String>, body: Bytes) -> Answer {
    let body = json_body(&body)?;
    let phone = optional(&body, "phoneNumber")?;
    await_status(&state, &path, Status::ScanQrCode).await;
    created(pair(&state, &path, phone)?)
}

/// A pairing code `ABCD-ABCD` for the phone; the scan then logs in that phone.
fn pair(state: &Sim, session: &str, phone: Option<String>) -> Result<Value, SimError> {
    let phone = phone
        .map(|p| p.trim().trim_start_matches('+').to_owned())
        .filter(|p| !p.is_empty())
        .ok_or_else(|| SimError::bad_request("phoneNumber is required"))?;
    if !(5..=20).contains(&phone.len()) || !phone.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SimError::bad_request(
            "phoneNumber must be digits with the country code",
        ));
    }
    with_session(state, session, |s| {
        require_status(s, Status::ScanQrCode)?;
        s.pairing_phone = Some(phone);
        lifecycle::code_fetched(state, s);
        const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTVWXYZ0123456789";
        let mut rng = rand::thread_rng();
        let mut code: String = (0..8)
            .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
            .collect();
        code.insert(4, '-');
        Ok(json!({"code": code}))
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
    fn read(self, body: &Value) -> Result<(String, bool), SimError> {
        match self {
            SendKind::Text => Ok((required(body, "text")?, false)),
            // `reply_to` is optional (ENGINE.md §4 row 20: MessageReplyRequest extends
            // MessageTextRequest; A4).
            SendKind::Reply => Ok((required(body, "text")?, false)),
            SendKind::Image | SendKind::File | SendKind::Video | SendKind::Voice => {
                let file = present(body, "file")?;
                let has = |k: &str| {
                    file.get(k)
                        .and_then(Value::as_str)
                        .is_some_and(|v| !v.is_empty())
                };
                if !file.is_object() || !(has("url") || has("data")) {
                    return Err(SimError::bad_request("file.url or file.data is required"));
                }
                Ok((optional(body, "caption")?.unwrap_or_default(), true))
            }
            SendKind::Location => {
                for (name, limit) in [("latitude", 90.0), ("longitude", 180.0)] {
                    let value = present(body, name)?;
                    match value.as_f64() {
                        Some(v) if v.abs() <= limit => {}
                        _ => {
                            return Err(SimError::bad_request(format!(
                                "{name} must be a number from -{limit} to {limit}"
                            )))
                        }
                    }
                }
                Ok((optional(body, "title")?.unwrap_or_default(), false))
            }
            SendKind::ContactVcard => match present(body, "contacts")? {
                Value::Array(items) if !items.is_empty() => Ok((String::new(), false)),
                _ => Err(SimError::bad_request("contacts must be a non-empty array")),
            },
            SendKind::Poll => {
                let poll = present(body, "poll")?;
                let name = required(&poll, "name")
                    .map_err(|_| SimError::bad_request("poll.name is required"))?;
                match poll.get("options") {
                    Some(Value::Array(o)) if !o.is_empty() => Ok((name, false)),
                    _ => Err(SimError::bad_request("poll.options is required")),
                }
            }
            SendKind::Seen | SendKind::StartTyping | SendKind::StopTyping => {
                Ok((String::new(), false))
            }
        }
    }
}

/// The twelve message calls. A send answers 201 with the message, then fires `message.any`
/// and `message.ack`. sendSeen and typing send nothing, so they fire no message events
/// (ENGINE.md §4 rows 21-23; B2): typing answers `{"result": true}` and sendSeen 201 with no
/// body, as the engine's WEBJS does.
async fn send(state: Sim, kind: SendKind, body: Bytes) -> Answer {
    let body = json_body(&body)?;
    let chat = chat_id(&required(&body, "chatId")?)?;
    let (text, has_media) = kind.read(&body)?;
    let session_name = optional(&body, "session")?.unwrap_or_else(|| "default".into());
    await_status(&state, &session_name, Status::Working).await;
    with_session(&state, &session_name, |s| {
        require_status(s, Status::Working)?;
        match kind {
            SendKind::StartTyping => {
                s.chat_presence.insert(chat.clone(), "typing".into());
                return created(done());
            }
            SendKind::StopTyping => {
                s.chat_presence.insert(chat.clone(), "paused".into());
                return created(done());
            }
            SendKind::Seen => return Ok(HttpResponse::Created().finish()),
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
                    return Err(SimError::not_found(format!(
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
    f: impl FnOnce(&mut Session) -> Result<R, SimError>,
) -> Result<R, SimError> {
    with_session(state, name, |s| {
        require_status(s, Status::Working)?;
        f(s)
    })
}

fn group_missing(id: &str) -> SimError {
    SimError::not_found(format!("Group \"{id}\" not found"))
}

fn participant_ids(body: &Value) -> Result<Vec<String>, SimError> {
    let bad = || SimError::bad_request("participants must be a non-empty array of {id}");
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
    await_status(&state, &path, Status::Working).await;
    working_session(&state, &path, |s| {
        ok(Value::Array(s.groups.values().cloned().collect()))
    })
}

async fn create_group(state: Sim, path: web::Path<String>, body: Bytes) -> Answer {
    let body = json_body(&body)?;
    let subject = required(&body, "name")?;
    let members = participant_ids(&body)?;
    await_status(&state, &path, Status::Working).await;
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
    await_status(&state, &session, Status::Working).await;
    working_session(&state, &session, |s| match s.groups.get(&id) {
        Some(group) => ok(group.clone()),
        None => Err(group_missing(&id)),
    })
}

async fn delete_group(state: Sim, path: web::Path<(String, String)>) -> Answer {
    let (session, id) = path.into_inner();
    await_status(&state, &session, Status::Working).await;
    working_session(&state, &session, |s| {
        s.groups.remove(&id).ok_or_else(|| group_missing(&id))?;
        Ok(HttpResponse::Ok().finish())
    })
}

async fn leave_group(state: Sim, path: web::Path<(String, String)>) -> Answer {
    let (session, id) = path.into_inner();
    await_status(&state, &session, Status::Working).await;
    working_session(&state, &session, |s| {
        s.groups.remove(&id).ok_or_else(|| group_missing(&id))?;
        state.emit(s, "group.v2.leave", json!({"group": {"id": id}}));
        // OAS 2026 declares 200 for leave (ENGINE.md §5 row 28; B8).
        ok(done())
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
            .ok_or_else(|| SimError::bad_request(format!("{field} is required")))?
    };
    await_status(&state, &session, Status::Working).await;
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
    await_status(&state, &session, Status::Working).await;
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
        // OAS 2026 declares 200 for the member and admin actions (ENGINE.md §5 rows 31-34; B8).
        ok(done())
    })
}

// ---- Channels -------------------------------------------------------------------------------

fn channel_missing(id: &str) -> SimError {
    SimError::not_found(format!("Channel \"{id}\" not found"))
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
    await_status(&state, &path, Status::Working).await;
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
    await_status(&state, &path, Status::Working).await;
    working_session(&state, &path, |s| {
        let id = format!("120363{}@newsletter", random_digits(12));
        let invite = format!(
            "https://www.whatsapp.com/channel/0029Va{}",
            random_digits(16)
        );
        // ENGINE.md §6 `Channel`.
        let channel = json!({
            "id": id, "name": name, "description": description, "invite": invite,
            "role": "OWNER", "verified": false, "subscribersCount": 0, "picture": null,
            "preview": null, "messages": [],
        });
        s.channels.insert(id, channel.clone());
        created(channel_view(&channel))
    })
}

/// The channel named by its `@newsletter` id, its invite code, or its invite link (the last
/// path segment is used: ENGINE.md §6 rows 37 and 39).
fn find_channel<'a>(session: &'a Session, id: &str) -> Result<&'a Value, SimError> {
    if let Some(channel) = session.channels.get(id) {
        return Ok(channel);
    }
    let code = id.trim_end_matches('/').rsplit('/').next().unwrap_or(id);
    session
        .channels
        .values()
        .find(|c| {
            c["invite"]
                .as_str()
                .is_some_and(|i| !code.is_empty() && i.rsplit('/').next() == Some(code))
        })
        .ok_or_else(|| channel_missing(id))
}

async fn get_channel(state: Sim, path: web::Path<(String, String)>) -> Answer {
    let (session, id) = path.into_inner();
    await_status(&state, &session, Status::Working).await;
    working_session(&state, &session, |s| {
        ok(channel_view(find_channel(s, &id)?))
    })
}

async fn delete_channel(state: Sim, path: web::Path<(String, String)>) -> Answer {
    let (session, id) = path.into_inner();
    await_status(&state, &session, Status::Working).await;
    working_session(&state, &session, |s| {
        let key = find_channel(s, &id)?["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        s.channels.remove(&key);
        Ok(HttpResponse::Ok().finish())
    })
}

/// `[{message, reactions, viewCount}]` (ENGINE.md §6 row 39, `ChannelMessage`; A7).
async fn preview_channel(state: Sim, path: web::Path<(String, String)>) -> Answer {
    let (session, id) = path.into_inner();
    await_status(&state, &session, Status::Working).await;
    working_session(&state, &session, |s| {
        let messages = find_channel(s, &id)?["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        ok(Value::Array(
            messages
                .into_iter()
                .map(|m| json!({"message": m, "reactions": {}, "viewCount": 0}))
                .collect(),
        ))
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
        .ok_or_else(|| SimError::bad_request("phone is required"))?;
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
    await_status(&state, &session, Status::Working).await;
    working_session(&state, &session, |_| {
        let exists = (7..=15).contains(&digits.len()) && !digits.ends_with("000");
        // `chatId` is omitted when the number is not on WhatsApp (ENGINE.md §7).
        if exists {
            ok(json!({"numberExists": true, "chatId": format!("{digits}@c.us")}))
        } else {
            ok(json!({"numberExists": false}))
        }
    })
}

async fn set_presence(state: Sim, path: web::Path<String>, body: Bytes) -> Answer {
    let body = json_body(&body)?;
    let presence = required(&body, "presence")?;
    let chat = optional(&body, "chatId")?
        .map(|c| chat_id(&c))
        .transpose()?;
    // The engine's 400 bodies are `{detail}` objects (ENGINE.md §8 row 41).
    let detail = |text: String| {
        SimError::Verbatim(
            actix_web::http::StatusCode::BAD_REQUEST,
            json!({ "detail": text }),
        )
    };
    match presence.as_str() {
        "online" | "offline" if chat.is_some() => {
            return Err(detail(format!(
            "'{presence}' presence works on the global scope and doesn't require 'chatId' field."
        )))
        }
        "online" | "offline" => {}
        "typing" | "recording" | "paused" if chat.is_some() => {}
        "typing" | "recording" | "paused" => {
            return Err(detail(format!(
                "'{presence}' presence requires 'chatId' field."
            )))
        }
        _ => {
            return Err(SimError::bad_request(
                "presence must be one of online, offline, typing, recording, paused",
            ))
        }
    }
    await_status(&state, &path, Status::Working).await;
    working_session(&state, &path, |s| {
        match chat {
            Some(chat) => {
                s.chat_presence.insert(chat, presence);
            }
            None => s.presence = presence,
        }
        created(done())
    })
}

async fn get_presence(state: Sim, path: web::Path<String>) -> Answer {
    await_status(&state, &path, Status::Working).await;
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
