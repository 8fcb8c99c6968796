//! The application every worker serves: the middleware in its order, its one app data
//! (`AppState`), and the route tables.

use crate::http::error::shape_plain_errors;
use crate::http::state::SharedState;
use crate::http::{body, edge, openapi, routes};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, ErrorHandlers};
use actix_web::{web, App};

/// One worker's application: its own `AppState` over the shared services. Called inside
/// the worker factory (awc clients are per worker: they cannot cross threads).
pub fn app(
    shared: &SharedState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let state = shared.for_worker();
    let body_timeout = state.config.http.body_timeout;
    // The last `wrap` runs first: the edge refuses before anything else looks.
    App::new()
        .wrap(from_fn(crate::http::quota_headers::stamp))
        .wrap(ErrorHandlers::new().default_handler(shape_plain_errors))
        .wrap(from_fn(body::deadline))
        .wrap(from_fn(edge::request_context))
        .wrap(from_fn(edge::refuse_at_the_edge))
        .configure(|cfg| edge::request_limits(cfg, body_timeout))
        .app_data(web::Data::new(state))
        .configure(routes::routes)
        .configure(openapi::routes)
        .default_service(web::to(edge::unknown_route))
}
