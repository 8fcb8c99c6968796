//! The tenant's event log (issue 15): `GET /v1/events` (a page by cursor), `GET
//! /v1/events/stream` (Server-Sent Events) and `GET /v1/ws` (a WebSocket with the engine's
//! query parameters). All three read the same log (`services::events`), take the same filters
//! and see only the caller's tenant, its key's mode and the sessions its key may use.
//!
//! A stream checks its key again every few seconds while it lasts: a key revoked or expired,
//! or a tenant suspended, ends it.

mod sse;
mod ws;

pub use sse::{__path_stream, stream};
pub use ws::{__path_websocket, websocket};

use crate::domain::events::{is_logged, EVENT_NAMES, GATEWAY_EVENTS};
use crate::domain::{EventCursor, Scope, SessionName};
use crate::http::admin::answers::ReadsEvents;
use crate::http::error::{truncated, ApiError};
use crate::http::extract::{client_addr, presented_key, TenantCaller, QUERY_KEY};
use crate::http::state::AppState;
use crate::services::auth::{Auth, AuthError};
use crate::services::events::{self, Filter, Follower, LogEvent, DEFAULT_PAGE, MAX_PAGE};
use actix_web::http::header::HeaderName;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::{BufMut, BytesMut};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{interval_at, Instant, Interval, MissedTickBehavior};

/// How often a stream checks its key again.
const RECHECK: Duration = Duration::from_secs(2);
/// Session or event names one reader may name at most.
const MAX_NAMES: usize = 64;
/// What a reconnecting `EventSource` sends: the `id` of the last event it received.
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// The schemas the annotations name (the routes are in `crate::http::routes::local`).
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(EventPage, EventEnvelope)))]
pub struct EventsApi;

/// A page of the log. Built as bytes from the stored envelopes; this type documents it.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct EventPage {
    /// Oldest first.
    events: Vec<EventEnvelope>,
    /// Where to read on from (`after=`): the last event's cursor when the page is full, past
    /// everything read so far otherwise. Never empty.
    #[schema(example = "7401_12")]
    next: String,
}

/// One event as the upstream relayed it, the session in the tenant's name, with its cursor.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct EventEnvelope {
    #[schema(example = "evt_01jn8r7ycrc1e7y0a1x3v9k2mf")]
    id: String,
    /// Milliseconds since 1970.
    #[schema(example = 1741249702485_i64)]
    timestamp: i64,
    #[schema(example = "message")]
    event: String,
    /// The tenant's name for the session.
    #[schema(example = "default")]
    session: String,
    /// The logged-in account; `null` while the session is not (the engine sends it so).
    #[schema(value_type = Option<Object>)]
    me: (),
    #[schema(value_type = Object)]
    payload: (),
    #[schema(example = "WEBJS")]
    engine: String,
    /// Where this event is in the log: `after=` it (or `Last-Event-ID`) reads on from here.
    #[schema(example = "7401_12")]
    cursor: String,
}

/// The log, oldest first, from a cursor.
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "Events",
    operation_id = "listEvents",
    params(
        ("after" = Option<String>, Query, description = "A cursor (an event's `cursor`, or `next`): the events after it. Absent: from the oldest kept"),
        ("limit" = Option<i64>, Query, description = "At most this many (1 to 500, default 100)"),
        ("session" = Option<String>, Query, description = "Only this session's events (a comma-separated list, or repeated; `*`: all)"),
        ("event" = Option<String>, Query, description = "Only these events (a comma-separated list, or repeated; `*`: all)"),
    ),
    responses(
        (status = 200, description = "A page of the log", body = EventPage),
        (status = 400, description = "A bad cursor, limit, session or event name, or an unknown parameter", body = ErrorBody),
        ReadsEvents,
    )
)]
pub async fn list(
    req: HttpRequest,
    caller: TenantCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let asked = Asked::read(&req, Route::List)?;
    let filter = asked.filter(&caller)?;
    let after = asked.after.unwrap_or(EventCursor::START);
    let page = events::page(&state.db, &filter, after, asked.limit).await?;
    let mut body = BytesMut::from(&b"{\"events\":["[..]);
    for (i, event) in page.events.iter().enumerate() {
        if i > 0 {
            body.put_u8(b',');
        }
        body.extend_from_slice(&event.json);
    }
    body.extend_from_slice(format!("],\"next\":\"{}\"}}", page.next).as_bytes());
    Ok(HttpResponse::Ok()
        .content_type(mime::APPLICATION_JSON)
        .body(body.freeze()))
}

/// Which route reads the query: they take the same filters, and each a little more.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    List,
    Stream,
    Socket,
}

impl Route {
    fn takes(self) -> &'static [&'static str] {
        match self {
            Route::List => &["after", "limit", "session", "event", "events"],
            Route::Stream | Route::Socket => &["after", "session", "event", "events", QUERY_KEY],
        }
    }
}

/// What a reader asked for.
struct Asked {
    after: Option<EventCursor>,
    limit: i64,
    /// `None`: every session (the key's, when it is limited to some).
    sessions: Option<Vec<String>>,
    /// `None`: every event.
    events: Option<Vec<String>>,
}

impl Asked {
    /// The query, checked whole: an unknown or repeated parameter, a bad value, is a 400.
    fn read(req: &HttpRequest, route: Route) -> Result<Self, ApiError> {
        let mut after = None;
        let mut limit = None;
        let mut sessions = Names::default();
        let mut events = Names::default();
        for (name, value) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
            match name.as_ref() {
                _ if !route.takes().contains(&name.as_ref()) => {
                    return Err(ApiError::bad_request(format!(
                        "unknown query parameter `{}`; this route takes {}",
                        truncated(&name),
                        route.takes().join(", ")
                    )))
                }
                "after" => once(&mut after, "after", EventCursor::parse(&value, "after")?)?,
                "limit" => once(&mut limit, "limit", parse_limit(&value)?)?,
                "session" => sessions.add(&value, check_session)?,
                "event" | "events" => events.add(&value, check_event)?,
                _ => {} // the key, which the extractor read
            }
        }
        if route == Route::Stream {
            // A reconnecting EventSource sends it with the URL it first opened, whose `after`
            // is older: the header is where it really is.
            if let Some(raw) = req.headers().get(LAST_EVENT_ID) {
                let raw = raw.to_str().unwrap_or_default();
                after = Some(EventCursor::parse(raw.trim(), "Last-Event-ID")?);
            }
        }
        Ok(Self {
            after,
            limit: limit.unwrap_or(DEFAULT_PAGE),
            sessions: sessions.into_list(),
            events: events.into_list(),
        })
    }

    /// The caller's tenant and mode, the sessions asked for (each one the key may use) or
    /// else those the key may use, and the events asked for.
    fn filter(&self, caller: &TenantCaller) -> Result<Filter, ApiError> {
        let sessions = match &self.sessions {
            Some(asked) => {
                if let Some(refused) = asked.iter().find(|s| !caller.may_use_session(s)) {
                    return Err(ApiError::forbidden(format!(
                        "this key may not use a session named `{refused}`"
                    )));
                }
                Some(asked.clone())
            }
            None => caller.key.sessions.clone(),
        };
        Ok(Filter {
            tenant: caller.tenant.id,
            mode: caller.key.mode,
            sessions,
            events: self.events.clone(),
        })
    }
}

fn once<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<(), ApiError> {
    if slot.replace(value).is_some() {
        return Err(ApiError::bad_request(format!("`{name}` may be given once")));
    }
    Ok(())
}

fn parse_limit(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| (1..=MAX_PAGE).contains(n))
        .ok_or_else(|| ApiError::bad_request(format!("limit must be between 1 and {MAX_PAGE}")))
}

/// Session or event names from comma-separated lists and repeated parameters; `*` is all.
#[derive(Default)]
struct Names {
    list: Vec<String>,
    all: bool,
}

impl Names {
    fn add(&mut self, raw: &str, check: fn(&str) -> Result<(), ApiError>) -> Result<(), ApiError> {
        for name in raw.split(',').map(str::trim) {
            if name == "*" {
                self.all = true;
                continue;
            }
            check(name)?;
            if !self.list.iter().any(|n| n == name) {
                self.list.push(name.to_owned());
            }
            if self.list.len() > MAX_NAMES {
                return Err(ApiError::bad_request(format!(
                    "at most {MAX_NAMES} session or event names"
                )));
            }
        }
        Ok(())
    }

    fn into_list(self) -> Option<Vec<String>> {
        (!self.all && !self.list.is_empty()).then_some(self.list)
    }
}

fn check_session(name: &str) -> Result<(), ApiError> {
    SessionName::parse(name).map(drop).map_err(Into::into)
}

fn check_event(name: &str) -> Result<(), ApiError> {
    if is_logged(name) {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "unknown event `{}`; events are `*` or: {}, {}",
        truncated(name),
        EVENT_NAMES.join(", "),
        GATEWAY_EVENTS.join(", ")
    )))
}

// ---- a stream: the follower, its keep-alive and its key ----------------------------------

/// What a stream does next.
enum Tick {
    Events(Vec<Arc<LogEvent>>),
    /// Nothing to send for a while: say so, with where a client would resume from.
    KeepAlive(EventCursor),
    /// The stream ends, and why (said to the client as it closes).
    End(String),
}

/// A stream's follower, with the key it was opened with, checked again every [`RECHECK`].
struct Tail {
    follower: Follower,
    key: SecretString,
    client: String,
    auth: Arc<Auth>,
    keepalive: Interval,
    recheck: Interval,
}

impl Tail {
    fn open(
        req: &HttpRequest,
        caller: &TenantCaller,
        state: &AppState,
        route: Route,
    ) -> Result<Self, ApiError> {
        let asked = Asked::read(req, route)?;
        let filter = asked.filter(caller)?;
        let key = presented_key(req)
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("a stream without its key")))?;
        let follower = Follower::new(&state.events, state.db.clone(), filter, asked.after);
        let every = |period: Duration| {
            let mut ticks = interval_at(Instant::now() + period, period);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            ticks
        };
        Ok(Self {
            follower,
            key: SecretString::from(key),
            client: client_addr(req).map(|a| a.to_string()).unwrap_or_default(),
            auth: state.auth.clone(),
            keepalive: every(state.config.events.keepalive),
            recheck: every(RECHECK),
        })
    }

    /// Where a client resumes from to miss nothing.
    fn position(&self) -> EventCursor {
        self.follower.position()
    }

    /// The next thing to send. Only the follower is ever cut short by another branch, and it
    /// is cancel-safe; the key's check runs whole.
    async fn next(&mut self) -> Tick {
        loop {
            enum Woken {
                Events(Option<Vec<Arc<LogEvent>>>),
                KeepAlive,
                Recheck,
            }
            let woken = tokio::select! {
                events = self.follower.next() => Woken::Events(events),
                _ = self.keepalive.tick() => Woken::KeepAlive,
                _ = self.recheck.tick() => Woken::Recheck,
            };
            match woken {
                Woken::Events(Some(events)) => return Tick::Events(events),
                Woken::Events(None) => {
                    return Tick::End(
                        "the gateway is shutting down; resume from the last cursor".into(),
                    )
                }
                Woken::KeepAlive => return Tick::KeepAlive(self.position()),
                Woken::Recheck => {
                    if let Err(why) = self.still_valid().await {
                        return Tick::End(why);
                    }
                }
            }
        }
    }

    /// Whether the key may still read the log. A check that could not be made (the database
    /// away) keeps the stream: it is made again at the next tick.
    async fn still_valid(&self) -> Result<(), String> {
        let checked = self
            .auth
            .recheck_tenant(self.key.expose_secret(), &self.client)
            .await;
        match checked {
            Ok(caller) if caller.key.scopes.admits(Scope::EventsRead) => Ok(()),
            Ok(_) => Err("the API key no longer has the `events:read` scope".into()),
            Err(e @ (AuthError::InvalidKey | AuthError::Suspended)) => {
                Err(ApiError::from(e).message().to_owned())
            }
            Err(e) => {
                tracing::debug!("a stream's key could not be checked again: {e}");
                Ok(())
            }
        }
    }
}
