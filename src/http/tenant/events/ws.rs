//! `GET /v1/ws?session=<name|*>&events=<names|*>`: the log over a WebSocket, with the engine's
//! query parameters, one envelope JSON (with its `cursor`) per text frame; `after=<cursor>`
//! replays what was missed first. The server pings every `WAGW_EVENT_KEEPALIVE_SECS`.
//!
//! What the client sends is read by a task of its own, which answers pings and notices the
//! close: so a client sending a flood cannot keep the stream from checking its key.

use super::{Route, Tail, Tick};
use crate::http::admin::answers::ReadsEvents;
use crate::http::error::ApiError;
use crate::http::extract::TenantCaller;
use crate::http::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{CloseCode, CloseReason, Message, MessageStream, Session};
use bytestring::ByteString;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A frame the client does not take within this long ends the stream (it can resume by cursor).
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest frame a client may send (it has nothing to say beyond pings and the close).
const MAX_CLIENT_FRAME: usize = 4 * 1024;

/// The log over a WebSocket: what was missed since the cursor, then live.
#[utoipa::path(
    get,
    path = "/v1/ws",
    tag = "Events",
    operation_id = "eventsWebSocket",
    params(
        ("session" = Option<String>, Query, description = "A session name, a comma-separated list, or `*` (all the key may use)"),
        ("events" = Option<String>, Query, description = "Event names, comma-separated or repeated, or `*` (all)"),
        ("after" = Option<String>, Query, description = "A cursor: the events after it first, then live. Absent: live from now"),
    ),
    responses(
        (status = 101, description = "Switching Protocols: a WebSocket. Each text frame is one event, the envelope JSON with its `cursor`; the server pings every WAGW_EVENT_KEEPALIVE_SECS and closes with 1008 when the key is revoked or expires or the tenant is suspended, with 1001 when the gateway shuts down."),
        (status = 400, description = "Not a WebSocket upgrade; a bad cursor, session or event name; an unknown parameter", body = ErrorBody),
        ReadsEvents,
    )
)]
pub async fn websocket(
    req: HttpRequest,
    body: web::Payload,
    caller: TenantCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tail = Tail::open(&req, &caller, &state, Route::Socket)?;
    let (response, session, incoming) = actix_ws::handle(&req, body).map_err(|_| {
        ApiError::bad_request(
            "this route is a WebSocket: send GET with `Connection: Upgrade`, \
             `Upgrade: websocket` and `Sec-WebSocket-Key`",
        )
    })?;
    let closed = CancellationToken::new();
    actix_web::rt::spawn(answer_client(
        session.clone(),
        incoming.max_frame_size(MAX_CLIENT_FRAME),
        closed.clone(),
    ));
    actix_web::rt::spawn(send_events(tail, session, closed));
    Ok(response)
}

/// Sends the log's events until the client goes, the key is no longer valid, or shutdown.
async fn send_events(mut tail: Tail, mut session: Session, closed: CancellationToken) {
    loop {
        let tick = tokio::select! {
            _ = closed.cancelled() => return,
            tick = tail.next() => tick,
        };
        let sent = match tick {
            Tick::Events(events) => {
                let mut sent = Ok(());
                for event in events {
                    let Ok(text) = ByteString::try_from(event.json.clone()) else {
                        continue;
                    };
                    sent = within_timeout(session.text(text)).await;
                    if sent.is_err() {
                        break;
                    }
                }
                sent
            }
            Tick::KeepAlive(_) => within_timeout(session.ping(b"")).await,
            Tick::End(why) => {
                let code = if why.contains("shutting down") {
                    CloseCode::Away
                } else {
                    CloseCode::Policy
                };
                let reason = CloseReason {
                    code,
                    description: Some(why),
                };
                let _ = session.close(Some(reason)).await;
                return;
            }
        };
        if sent.is_err() {
            let _ = session.close(None).await;
            return;
        }
    }
}

async fn within_timeout(
    send: impl std::future::Future<Output = Result<(), actix_ws::Closed>>,
) -> Result<(), ()> {
    match tokio::time::timeout(SEND_TIMEOUT, send).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// Answers the client's pings and notices when it closes (or breaks the protocol).
async fn answer_client(
    mut session: Session,
    mut incoming: MessageStream,
    closed: CancellationToken,
) {
    while let Some(Ok(message)) = incoming.recv().await {
        match message {
            Message::Ping(bytes) if session.pong(&bytes).await.is_err() => break,
            Message::Close(_) => break,
            // Pings answered, and text, binary and pongs carry nothing the stream needs.
            _ => {}
        }
    }
    closed.cancel();
}
