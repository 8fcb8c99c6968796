//! `GET /v1/events/stream`: the log as Server-Sent Events. Each event is `id: <cursor>`,
//! `event: <name>`, `data: <envelope JSON>`; the stream opens with the position it starts
//! from (`id:` alone, which sets a browser's last event id without an event), and an idle
//! stream sends a comment and its position every `WAGW_EVENT_KEEPALIVE_SECS`, so a client
//! that reconnects with `Last-Event-ID` misses nothing even when nothing came.

use super::{Route, Tail, Tick};
use crate::http::admin::answers::ReadsEvents;
use crate::http::error::ApiError;
use crate::http::extract::TenantCaller;
use crate::http::state::AppState;
use crate::services::events::LogEvent;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use std::convert::Infallible;
use std::sync::Arc;

/// The log as Server-Sent Events: what was missed since the cursor, then live.
#[utoipa::path(
    get,
    path = "/v1/events/stream",
    tag = "Events",
    operation_id = "streamEvents",
    params(
        ("after" = Option<String>, Query, description = "A cursor: the events after it, then live. Absent: live from now"),
        ("session" = Option<String>, Query, description = "Only this session's events (a comma-separated list, or repeated; `*`: all)"),
        ("event" = Option<String>, Query, description = "Only these events (a comma-separated list, or repeated; `*`: all)"),
        ("Last-Event-ID" = Option<String>, Header, description = "The last `id:` received, as a reconnecting EventSource sends it; wins over `after`"),
    ),
    responses(
        (status = 200, description = "An endless `text/event-stream`: for each event `id: <cursor>`, `event: <name>`, `data: <envelope JSON with its cursor>`; first an `id:` alone (the position it starts from), and a `:` comment with the position every WAGW_EVENT_KEEPALIVE_SECS (15 s). It ends when the key is revoked or expires, or the tenant is suspended.", content_type = "text/event-stream", body = String),
        (status = 400, description = "A bad cursor, session or event name, or an unknown parameter", body = ErrorBody),
        ReadsEvents,
    )
)]
pub async fn stream(
    req: HttpRequest,
    caller: TenantCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tail = Tail::open(&req, &caller, &state, Route::Stream)?;
    let opening = Bytes::from(format!("id: {}\n\n", tail.position()));
    let body = futures_util::stream::unfold(Some((tail, Some(opening))), |open| async move {
        let (mut tail, opening) = open?;
        if let Some(opening) = opening {
            return Some((Ok::<_, Infallible>(opening), Some((tail, None))));
        }
        match tail.next().await {
            Tick::Events(events) => Some((Ok(frames(&events)), Some((tail, None)))),
            Tick::KeepAlive(at) => Some((
                Ok(Bytes::from(format!(": keep-alive\nid: {at}\n\n"))),
                Some((tail, None)),
            )),
            Tick::End(why) => Some((Ok(Bytes::from(format!(": {}\n\n", one_line(&why)))), None)),
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // nginx and others buffer responses unless told not to.
        .insert_header(("x-accel-buffering", "no"))
        .streaming(body))
}

/// Events as SSE frames, written together.
fn frames(events: &[Arc<LogEvent>]) -> Bytes {
    let mut out = BytesMut::new();
    for e in events {
        out.extend_from_slice(
            format!("id: {}\nevent: {}\ndata: ", e.cursor, one_line(&e.event)).as_bytes(),
        );
        // Compact JSON: a string's line breaks are escaped, so it is one `data:` line.
        out.extend_from_slice(&e.json);
        out.extend_from_slice(b"\n\n");
    }
    out.freeze()
}

/// A field's value on one line: a name with a line break in it would start a field of its own.
fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EventCursor, Mode};

    #[test]
    fn one_frame_per_event_and_no_field_smuggled_in_a_name() {
        let event = |name: &str, seq| {
            Arc::new(LogEvent {
                cursor: EventCursor { xid: 5, seq },
                tenant_id: uuid::Uuid::nil(),
                mode: Mode::Live,
                session: "default".into(),
                event: name.into(),
                json: Bytes::from_static(br#"{"text":"a\nb"}"#),
            })
        };
        let out = frames(&[
            event("message", 1),
            event("evil\ndata: forged\r\nid: 9_9", 2),
        ]);
        let text = std::str::from_utf8(&out).unwrap();
        assert_eq!(
            text,
            "id: 5_1\nevent: message\ndata: {\"text\":\"a\\nb\"}\n\n\
             id: 5_2\nevent: evil data: forged  id: 9_9\ndata: {\"text\":\"a\\nb\"}\n\n"
        );
    }
}
