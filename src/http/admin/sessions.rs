//! Admins see every session, owned or not, adopt upstream sessions into tenants (so phones
//! paired before the gateway move in without scanning again) and delete any session.

use crate::domain::{SessionName, UpstreamSession};
use crate::http::admin::audit::{self, Actor};
use crate::http::error::ApiError;
use crate::http::extract::AdminCaller;
use crate::http::tenant::ProxyState;
use crate::services::upstream::{UpstreamCall, UpstreamClient};
use actix_web::http::{header::HeaderMap, Method, StatusCode};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/v1/sessions").route(web::get().to(list_sessions)))
        .service(web::resource("/admin/v1/sessions/adopt").route(web::post().to(adopt_session)))
        .service(
            web::resource("/admin/v1/sessions/{upstream_name}")
                .route(web::delete().to(delete_session)),
        );
}

/// The OpenAPI description of the admin session routes.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list_sessions, adopt_session, delete_session),
    components(schemas(AdminSessionView, AdoptSession))
)]
pub struct SessionsAdminApi;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdminSessionView {
    /// The session's name on the hosted API.
    #[schema(example = "gw_4fQ2m8Xk1LzR7pT0aBcD")]
    pub upstream_name: String,
    /// The owning tenant; null for an upstream session no tenant owns.
    pub tenant_id: Option<Uuid>,
    pub tenant_name: Option<String>,
    /// The tenant's name for it.
    #[schema(example = "default")]
    pub name: Option<String>,
    /// The live status on the upstream (`STOPPED`, `STARTING`, `SCAN_QR_CODE`, `WORKING`,
    /// `FAILED`); null when the upstream no longer has the session.
    #[schema(example = "WORKING")]
    pub status: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdoptSession {
    /// The existing session on the hosted API.
    #[schema(example = "default")]
    pub upstream_name: String,
    pub tenant_id: Uuid,
    /// The tenant's name for it (1 to 64 of `A-Za-z0-9_-`).
    #[schema(example = "sales-phone")]
    pub name: String,
}

/// Every session: the ones tenants own, with their owner, and upstream sessions nobody owns.
#[utoipa::path(
    get,
    path = "/admin/v1/sessions",
    tag = "Admin",
    operation_id = "adminListSessions",
    responses(
        (status = 200, description = "Every session", body = [AdminSessionView]),
        (status = 401, description = "Missing or invalid admin token", body = crate::http::error::ErrorBody),
        (status = 502, description = "The upstream is unreachable", body = crate::http::error::ErrorBody),
        (status = 504, description = "The upstream did not answer in time", body = crate::http::error::ErrorBody),
    ),
    security(("admin_jwt" = []))
)]
pub async fn list_sessions(
    _admin: AdminCaller,
    req: HttpRequest,
    state: web::Data<ProxyState>,
    client: web::Data<UpstreamClient>,
) -> Result<HttpResponse, ApiError> {
    let upstream = upstream_statuses(&req, &client).await?;
    let mut owned = state.sessions.list_all().await?;
    let mut views: Vec<AdminSessionView> = owned
        .drain(..)
        .map(|s| AdminSessionView {
            status: upstream.get(&s.upstream_name).cloned(),
            upstream_name: s.upstream_name,
            tenant_id: Some(s.tenant_id),
            tenant_name: Some(s.tenant_name),
            name: Some(s.name),
        })
        .collect();
    let mut unowned: Vec<AdminSessionView> = upstream
        .into_iter()
        .filter(|(name, _)| !views.iter().any(|v| &v.upstream_name == name))
        .map(|(upstream_name, status)| AdminSessionView {
            upstream_name,
            tenant_id: None,
            tenant_name: None,
            name: None,
            status: Some(status),
        })
        .collect();
    unowned.sort_by(|a, b| a.upstream_name.cmp(&b.upstream_name));
    views.append(&mut unowned);
    Ok(HttpResponse::Ok().json(views))
}

/// Makes an existing upstream session a tenant's, under the tenant's name for it.
#[utoipa::path(
    post,
    path = "/admin/v1/sessions/adopt",
    tag = "Admin",
    operation_id = "adminAdoptSession",
    request_body = AdoptSession,
    responses(
        (status = 201, description = "Adopted", body = AdminSessionView),
        (status = 400, description = "A name is not a valid session name", body = crate::http::error::ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = crate::http::error::ErrorBody),
        (status = 404, description = "No such tenant, or no such upstream session", body = crate::http::error::ErrorBody),
        (status = 409, description = "Already owned, or the tenant already uses that name", body = crate::http::error::ErrorBody),
        (status = 502, description = "The upstream is unreachable", body = crate::http::error::ErrorBody),
    ),
    security(("admin_jwt" = []))
)]
pub async fn adopt_session(
    admin: AdminCaller,
    req: HttpRequest,
    state: web::Data<ProxyState>,
    client: web::Data<UpstreamClient>,
    body: web::Json<AdoptSession>,
) -> Result<HttpResponse, ApiError> {
    let upstream = UpstreamSession::parse(&body.upstream_name)?;
    let name = SessionName::parse_new(&body.name)?;
    let statuses = upstream_statuses(&req, &client).await?;
    let status = statuses.get(upstream.as_str()).cloned().ok_or_else(|| {
        ApiError::not_found(format!(
            "the upstream has no session `{}`",
            upstream.as_str()
        ))
    })?;
    state
        .sessions
        .adopt(body.tenant_id, &name, &upstream)
        .await?;
    let tenant_name = sqlx::query_scalar("SELECT name FROM tenants WHERE id = $1")
        .bind(body.tenant_id)
        .fetch_optional(&state.pool)
        .await?;
    audit::record(
        &state.pool,
        &Actor::of(&admin, &req),
        "session.adopt",
        "session",
        upstream.as_str(),
        serde_json::json!({"tenant_id": body.tenant_id, "name": name.as_str()}),
    )
    .await?;
    Ok(HttpResponse::Created().json(AdminSessionView {
        upstream_name: upstream.as_str().to_owned(),
        tenant_id: Some(body.tenant_id),
        tenant_name,
        name: Some(name.as_str().to_owned()),
        status: Some(status),
    }))
}

/// Deletes a session on the upstream, whoever owns it, and forgets its owner.
#[utoipa::path(
    delete,
    path = "/admin/v1/sessions/{upstream_name}",
    tag = "Admin",
    operation_id = "adminDeleteSession",
    params(("upstream_name" = String, Path, description = "The session's name on the hosted API")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid admin token", body = crate::http::error::ErrorBody),
        (status = 404, description = "Neither the upstream nor any tenant has the session", body = crate::http::error::ErrorBody),
        (status = 502, description = "The upstream is unreachable", body = crate::http::error::ErrorBody),
    ),
    security(("admin_jwt" = []))
)]
pub async fn delete_session(
    admin: AdminCaller,
    req: HttpRequest,
    state: web::Data<ProxyState>,
    client: web::Data<UpstreamClient>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::not_found(format!("session `{path}` not found"));
    let upstream = UpstreamSession::parse(&path).map_err(|_| not_found())?;
    let answer = call_upstream(
        &req,
        &client,
        Method::DELETE,
        &format!("/v1/sessions/{}", upstream.as_str()),
    )
    .await?;
    let upstream_had_it = answer.0.is_success();
    if !upstream_had_it && answer.0 != StatusCode::NOT_FOUND {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("the upstream refused the deletion ({})", answer.0),
        ));
    }
    let owner = state.sessions.forget_upstream(upstream.as_str()).await?;
    if !upstream_had_it && owner.is_none() {
        return Err(not_found());
    }
    audit::record(
        &state.pool,
        &Actor::of(&admin, &req),
        "session.delete",
        "session",
        upstream.as_str(),
        serde_json::json!({"tenant_id": owner.as_ref().map(|o| o.0), "name": owner.map(|o| o.1)}),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The upstream's sessions by name, with their status.
async fn upstream_statuses(
    req: &HttpRequest,
    client: &UpstreamClient,
) -> Result<HashMap<String, String>, ApiError> {
    let (status, body) = call_upstream(req, client, Method::GET, "/v1/sessions").await?;
    if !status.is_success() {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("the upstream refused to list its sessions ({status})"),
        ));
    }
    let listed: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "the upstream answered malformed JSON",
        )
        .with_cause(e)
    })?;
    Ok(listed
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let name = s.get("name")?.as_str()?.to_owned();
            let status = s
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("UNKNOWN")
                .to_owned();
            Some((name, status))
        })
        .collect())
}

/// One call of the gateway's own (no tenant's headers), answered with its status and body.
async fn call_upstream(
    req: &HttpRequest,
    client: &UpstreamClient,
    method: Method,
    path: &str,
) -> Result<(StatusCode, bytes::Bytes), ApiError> {
    let no_headers = HeaderMap::new();
    let request_id = req
        .extensions()
        .get::<crate::telemetry::RequestId>()
        .map(|r| r.0.clone());
    let retryable = method == Method::GET;
    let call = UpstreamCall {
        method,
        path_and_query: path.to_owned(),
        body: None,
        headers: &no_headers,
        request_id: request_id.as_deref(),
        route: "/admin/v1/sessions",
        retryable,
    };
    let mut answer = client.send(&call).await?;
    let body = answer.read_body().await?;
    Ok((answer.status(), body))
}
