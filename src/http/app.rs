//! The application every worker serves: the middleware in its order, the app data, and the
//! route tables in the order actix tries them.

use crate::http::error::shape_plain_errors;
use crate::http::state::SharedState;
use crate::http::{admin, body, edge, openapi, ops, routes};
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
    let legacy = LegacyData::of(shared);
    // The last `wrap` runs first: the edge refuses before anything else looks.
    App::new()
        .wrap(ErrorHandlers::new().default_handler(shape_plain_errors))
        .wrap(from_fn(body::deadline))
        .wrap(from_fn(edge::request_context))
        .wrap(from_fn(edge::refuse_at_the_edge))
        .configure(|cfg| edge::request_limits(cfg, body_timeout))
        .app_data(web::Data::new(state))
        .configure(|cfg| legacy.register(cfg))
        .configure(routes)
        .default_service(web::to(edge::unknown_route))
}

/// Routes are tried in order: the forwarded rows, the hot path, come first. The webhook
/// routes precede them so /v1/sessions/{session}/webhooks/... resolve there; no forwarded
/// pattern overlaps the routes after them.
fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(crate::http::tenant::webhooks::routes)
        .configure(routes::routes)
        .configure(admin::routes)
        .configure(admin::sessions::routes)
        .configure(ops::routes)
        .configure(openapi::routes);
}

/// The app data handlers took before `AppState`, registered until each handler takes
/// `web::Data<AppState>` instead (then its entry goes).
struct LegacyData {
    db: web::Data<crate::db::Db>,
    config: web::Data<crate::config::Config>,
    proxy: web::Data<crate::http::tenant::ProxyState>,
    auth: web::Data<crate::services::auth::Auth>,
    relay: web::Data<crate::services::webhooks::Relay>,
    upstream: web::Data<crate::services::upstream::UpstreamClient>,
}

impl LegacyData {
    fn of(state: &SharedState) -> Self {
        Self {
            db: web::Data::new(state.db.clone()),
            config: web::Data::from(state.config.clone()),
            proxy: web::Data::from(state.proxy.clone()),
            auth: web::Data::from(state.auth.clone()),
            relay: web::Data::from(state.relay.clone()),
            upstream: web::Data::new(state.upstream_client()),
        }
    }

    fn register(self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(self.db)
            .app_data(self.config)
            .app_data(self.proxy)
            .app_data(self.auth)
            .app_data(self.relay)
            .app_data(self.upstream);
    }
}
