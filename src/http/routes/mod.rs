//! The HTTP surface as data: the forwarded table ([`endpoints`], the hosted API's rows) and
//! the local table ([`local`], what the gateway serves itself), registered here and
//! documented from the same rows (`crate::http::openapi`).

pub mod endpoints;
pub mod local;
pub mod path_params;
pub mod schema;

pub use endpoints::{Endpoint, Handling};

use crate::http::extract::{requiring, Marks};
use actix_web::web;

/// Registers every row of both tables. Rows sharing a path become one resource, so a method
/// no row declares on a known path answers 405. Resources are registered most specific first
/// (see [`specificity`]), so no table and no module has to come before another.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let mut paths: Vec<&str> = endpoints::all().iter().map(|e| e.path).collect();
    paths.extend(local::all().iter().map(|r| r.path.as_str()));
    paths.sort_by_key(|path| specificity(path));
    paths.dedup();
    for path in paths {
        let forwarded = endpoints::all().iter().filter(|e| e.path == path).map(|e| {
            serve(e)
                .method(e.method.clone())
                .wrap(requiring(Marks::scope(e.scope)))
        });
        let local = local::all()
            .iter()
            .filter(|r| r.path == path)
            .map(|r| match r.guard {
                local::Guard::Tenant(Some(scope)) => (r.handler)()
                    .method(r.method.clone())
                    .wrap(requiring(Marks::scope(scope))),
                local::Guard::Stream(scope) => (r.handler)()
                    .method(r.method.clone())
                    .wrap(requiring(Marks::stream(scope))),
                _ => (r.handler)().method(r.method.clone()),
            });
        cfg.service(
            forwarded
                .chain(local)
                .fold(web::resource(path), |resource, route| resource.route(route)),
        );
    }
}

/// How actix tries a path: per segment, a literal before a `{parameter}`, from the left, so
/// `/v1/sessions/start` comes before `/v1/sessions/{session}` (which would take it). Paths that
/// sort equal match disjoint requests; the sort is stable, and equal paths end up adjacent.
fn specificity(path: &str) -> (Vec<bool>, &str) {
    let segments = path.split('/').map(|s| s.starts_with('{')).collect();
    (segments, path)
}

/// A forwarded row's handler: the proxy, or the gateway's own for the rows it serves itself.
fn serve(endpoint: &'static Endpoint) -> actix_web::Route {
    if endpoint.handling == Handling::WebhookRelay {
        return (local::relayed(endpoint))();
    }
    web::route().to(move |req, payload, caller, state| {
        crate::http::tenant::proxy::handle(endpoint, req, payload, caller, state)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_segments_come_before_parameters() {
        let mut paths = [
            "/v1/sessions/{session}",
            "/admin/v1/sessions/{upstream_name}",
            "/v1/sessions/start",
            "/admin/v1/sessions/adopt",
        ];
        paths.sort_by_key(|p| specificity(p));
        assert!(
            paths.iter().position(|p| *p == "/v1/sessions/start")
                < paths.iter().position(|p| *p == "/v1/sessions/{session}")
        );
        assert!(
            paths.iter().position(|p| *p == "/admin/v1/sessions/adopt")
                < paths
                    .iter()
                    .position(|p| *p == "/admin/v1/sessions/{upstream_name}")
        );
    }
}
