//! The hosted API's surface: its table of endpoints, the client that calls it, and the proxy
//! that serves each row to tenants.

pub mod endpoints;
pub mod path_params;
pub mod schema;

pub use endpoints::{Endpoint, Handling};

use actix_web::web;

/// Registers every forwarded row of the table. Rows sharing a path become one resource, so a
/// method the hosted API does not declare on a known path answers 405; fixed paths are
/// registered before patterns (`/v1/sessions/start` before `/v1/sessions/{session}`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    let mut paths: Vec<&'static str> = Vec::new();
    for endpoint in endpoints::all() {
        if !paths.contains(&endpoint.path) {
            paths.push(endpoint.path);
        }
    }
    paths.sort_by_key(|p| p.matches('{').count());
    for path in paths {
        let rows = endpoints::all()
            .iter()
            .filter(|e| e.path == path && e.handling != Handling::WebhookRelay);
        let mut resource = web::resource(path);
        let mut served = false;
        for endpoint in rows {
            served = true;
            resource = resource.route(web::method(endpoint.method.clone()).to(
                move |req, payload, caller, state| {
                    crate::http::tenant::proxy::handle(endpoint, req, payload, caller, state)
                },
            ));
        }
        if served {
            cfg.service(resource);
        }
    }
}
