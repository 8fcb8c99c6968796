//! Operations endpoints: liveness, readiness and metrics. None needs credentials.

use crate::db::Db;
use crate::error::ApiError;
use crate::metrics::Metrics;
use actix_web::{web, HttpResponse};
use serde::Serialize;
use std::time::Duration;

/// Readiness must answer within a second even while the database hangs.
const READY_DEADLINE: Duration = Duration::from_millis(900);

#[derive(Serialize, utoipa::ToSchema)]
pub struct Status {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Registered as resources (not the `#[get]` macros) so that another method on a known path
/// answers 405, not 404.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").route(web::get().to(healthz)))
        .service(web::resource("/readyz").route(web::get().to(readyz)))
        .service(web::resource("/metrics").route(web::get().to(metrics)));
}

/// Liveness: the process is up and serving.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "Operations",
    operation_id = "healthz",
    responses((status = 200, description = "The gateway is alive", body = Status))
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

/// Readiness: the database answers and is migrated.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "Operations",
    operation_id = "readyz",
    responses(
        (status = 200, description = "Ready to serve", body = Status),
        (status = 503, description = "The database is unreachable or not migrated", body = crate::error::ErrorBody)
    )
)]
pub async fn readyz(pool: web::Data<Db>) -> Result<HttpResponse, ApiError> {
    match tokio::time::timeout(READY_DEADLINE, crate::db::is_ready(&pool)).await {
        Ok(Ok(())) => Ok(HttpResponse::Ok().json(Status { status: "ready" })),
        Ok(Err(e)) => Err(ApiError::service_unavailable("the database is not ready").with_cause(e)),
        Err(_) => Err(ApiError::service_unavailable(
            "the database did not answer in time",
        )),
    }
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "Operations",
    operation_id = "metrics",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String))
)]
pub async fn metrics(metrics: web::Data<Metrics>, pool: web::Data<Db>) -> HttpResponse {
    let (size, idle) = pool.usage();
    let idle = idle as i64;
    metrics
        .pool_connections
        .with_label_values(&["idle"])
        .set(idle);
    metrics
        .pool_connections
        .with_label_values(&["in_use"])
        .set(size as i64 - idle);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render())
}
