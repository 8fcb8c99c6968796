//! `/v1/sessions/{session}/webhooks`: registering and removing a session's webhooks.

use super::access::with_session;
use super::reply::created;
use crate::sim::body::{json_body, optional};
use crate::sim::error::{SimError, SimResult};
use crate::sim::registration::Registration;
use crate::sim::state::SimState;
use actix_web::{web, HttpResponse};
use bytes::Bytes;
use std::collections::HashMap;

type Sim = web::Data<SimState>;

pub async fn add(state: Sim, path: web::Path<String>, body: Bytes) -> SimResult {
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

/// The one registered at `webhookUrl` (in the query, or the body: B7), or all of them.
pub async fn delete(
    state: Sim,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
    body: Bytes,
) -> SimResult {
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
