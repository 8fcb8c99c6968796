//! The rows that do more than forward (`Handling`), each one impl of the same hooks: the phases
//! ask, they never match on the row kind themselves.

use super::ProxyCtx;
use crate::http::routes::endpoints::Handling;
use actix_web::http::StatusCode;
use serde_json::Value;

pub trait Special: Sync {
    /// The call names a session it creates (recorded before forwarding, within the tenant's
    /// `max_sessions`), not one it must already own.
    fn creates_session(&self) -> bool {
        false
    }

    /// Answers are cached per tenant, session and phone number.
    fn cached(&self) -> bool {
        false
    }

    /// Whether the gateway forgets the call's session after this outcome (`None`: the call
    /// failed without an answer), keeping the sessions table in step with the upstream.
    fn forgets_session(&self, _ctx: &ProxyCtx<'_>, _answered: Option<StatusCode>) -> bool {
        false
    }

    /// The answer lists sessions: the tenant sees only its own, under its names.
    fn lists_sessions(&self) -> bool {
        false
    }
}

pub fn of(handling: Handling) -> &'static dyn Special {
    match handling {
        // Relayed rows are routed to the webhook handlers, never here.
        Handling::Forward | Handling::WebhookRelay => &Forward,
        Handling::CreateSession => &CreateSession,
        Handling::ListSessions => &ListSessions,
        Handling::DeleteSession => &DeleteSession,
        Handling::StopSession => &StopSession,
        Handling::CheckExists => &CheckExists,
    }
}

struct Forward;
impl Special for Forward {}

struct CreateSession;
impl Special for CreateSession {
    fn creates_session(&self) -> bool {
        true
    }

    /// A creation the upstream did not confirm is not kept.
    fn forgets_session(&self, _ctx: &ProxyCtx<'_>, answered: Option<StatusCode>) -> bool {
        !answered.is_some_and(|s| s.is_success())
    }
}

struct ListSessions;
impl Special for ListSessions {
    fn lists_sessions(&self) -> bool {
        true
    }
}

struct DeleteSession;
impl Special for DeleteSession {
    /// Gone upstream, whether it deleted it now or had already lost it.
    fn forgets_session(&self, _ctx: &ProxyCtx<'_>, answered: Option<StatusCode>) -> bool {
        answered.is_some_and(|s| s.is_success() || s == StatusCode::NOT_FOUND)
    }
}

struct StopSession;
impl Special for StopSession {
    /// ENGINE.md §2 row 6: stopping with `logout: true` deletes the session upstream.
    fn forgets_session(&self, ctx: &ProxyCtx<'_>, answered: Option<StatusCode>) -> bool {
        let logs_out = ctx
            .json
            .as_ref()
            .and_then(|b| b.get("logout"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        logs_out && answered.is_some_and(|s| s.is_success())
    }
}

struct CheckExists;
impl Special for CheckExists {
    fn cached(&self) -> bool {
        true
    }
}
