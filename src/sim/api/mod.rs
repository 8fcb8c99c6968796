//! The seed's endpoints under `/v1`, stateful per session. Validation comes first (400 naming
//! the field), then the session (404), then its status (422 with the engine's object body).
//! Where the seed is silent the engine's behaviour is followed; each such place names the
//! ENGINE.md fact (or conformance item) it comes from.

mod access;
mod auth;
mod channels;
mod contacts;
mod groups;
mod messages;
mod reply;
mod sessions;
mod webhooks;

pub use access::{with_session, with_session_in};

use crate::sim::error::{SimError, SimResult};
use crate::sim::routing::resources;
use crate::sim::state::SimState;
use actix_web::{web, HttpRequest};
use bytes::Bytes;
use groups::Membership;
use messages::SendKind;

type Sim = web::Data<SimState>;

/// Every `/v1` path and its methods. A fixed path comes before the `{session}` pattern it
/// would otherwise fall into.
pub fn routes(cfg: &mut web::ServiceConfig) {
    resources!(cfg;
        "/sessions" => get(sessions::list), post(sessions::create);
        "/sessions/start" => post(sessions::start);
        "/sessions/stop" => post(sessions::stop);
        "/sessions/logout" => post(sessions::logout);
        "/sessions/{session}" => get(sessions::get), delete(sessions::delete);
        "/{session}/auth/qr" => get(auth::qr_code);
        "/{session}/auth/pairing-code" => get(auth::pairing_code);
        "/{session}/auth/request-code" => post(auth::request_code);
    );
    for kind in SendKind::ALL {
        let send = move |state: Sim, body: Bytes| messages::send(state, kind, body);
        cfg.service(web::resource(kind.path()).route(web::post().to(send)));
    }
    resources!(cfg;
        "/sessions/{session}/webhooks" => post(webhooks::add), delete(webhooks::delete);
        "/sessions/{session}/groups" => get(groups::list), post(groups::create);
        "/sessions/{session}/groups/{groupId}" => get(groups::get), delete(groups::delete);
        "/sessions/{session}/groups/{groupId}/leave" => post(groups::leave);
        "/sessions/{session}/groups/{groupId}/subject" => put(groups::set_subject);
        "/sessions/{session}/groups/{groupId}/description" => put(groups::set_description);
    );
    for change in Membership::ALL {
        let apply = move |state: Sim, path: web::Path<(String, String)>, body: Bytes| {
            groups::change_members(state, path, body, change)
        };
        cfg.service(web::resource(change.path()).route(web::post().to(apply)));
    }
    resources!(cfg;
        "/sessions/{session}/channels" => get(channels::list), post(channels::create);
        "/sessions/{session}/channels/{channelId}" => get(channels::get), delete(channels::delete);
        "/sessions/{session}/channels/{channelId}/messages/preview" => get(channels::preview);
        "/contacts/check-exists" => get(contacts::check_exists);
        "/sessions/{session}/presence" => get(contacts::get_presence), post(contacts::set_presence);
    );
}

pub async fn unknown_route(req: HttpRequest) -> SimResult {
    Err(SimError::not_found(format!(
        "Cannot {} {}",
        req.method(),
        req.path()
    )))
}
