//! Operations endpoints: liveness, readiness and metrics. None needs credentials, except
//! `/metrics` when `WAGW_METRICS_TOKEN` is set.

use crate::config::Config;
use crate::db::Probe;
/// How long one readiness probe answers `/readyz` for.
pub use crate::db::READY_CACHE;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::ExposeSecret;
use serde::Serialize;
use subtle::ConstantTimeEq;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Status {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: the process is up and serving.
#[utoipa::path(get, path = "/healthz", tag = "Operations", operation_id = "healthz",
    responses((status = 200, description = "The gateway is alive", body = Status)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

/// Readiness: the database answers and is migrated.
#[utoipa::path(get, path = "/readyz", tag = "Operations", operation_id = "readyz",
    responses((status = 200, description = "Ready to serve", body = Status), (status = 503, description = "The database is unreachable or not migrated", body = ErrorBody)))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    match state.readiness.probe(&state.db).await {
        Probe::Ready => Ok(HttpResponse::Ok().json(Status { status: "ready" })),
        Probe::NotReady(e) => Err(ApiError::service_unavailable("the database is not ready")
            .with_cause(anyhow::anyhow!("{e:#}"))),
        Probe::TimedOut => Err(ApiError::service_unavailable(
            "the database did not answer in time",
        )),
    }
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "Operations", operation_id = "metrics",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String), (status = 401, description = "`WAGW_METRICS_TOKEN` is set and the request did not present it", body = ErrorBody)))]
pub async fn metrics(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let metrics = &state.metrics;
    if !presents_metrics_token(&req, &state.config) {
        return Err(ApiError::unauthorized(
            "/metrics needs the metrics token: Authorization: Bearer <WAGW_METRICS_TOKEN>",
        ));
    }
    let (size, idle) = state.db.usage();
    let idle = idle as i64;
    metrics
        .pool_connections
        .with_label_values(&["idle"])
        .set(idle);
    metrics
        .pool_connections
        .with_label_values(&["in_use"])
        .set(size as i64 - idle);
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render()))
}

/// Without a configured token anyone may read; with one, the Bearer token must equal it,
/// compared in constant time.
fn presents_metrics_token(req: &HttpRequest, config: &Config) -> bool {
    let Some(token) = &config.metrics_token else {
        return true;
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    presented
        .as_bytes()
        .ct_eq(token.expose_secret().as_bytes())
        .into()
}
