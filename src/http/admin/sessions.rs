//! Admins see every session, owned or not, adopt upstream sessions into tenants (so phones
//! paired before the gateway move in without scanning again) and delete any session.

use crate::domain::{Mode, SessionName, UpstreamSession};
use crate::http::admin::answers::UpstreamUnreachable;
use crate::http::error::ApiError;
use crate::http::extract::AdminCaller;
use crate::http::state::AppState;
use crate::services::upstream::{
    Gateway, OwnAnswer, UpstreamCall, UpstreamError, UpstreamErrorKind,
};
use crate::services::webhooks::registration::{Registrar, SessionRef};
use crate::store::audit::{self, Actor, Audit};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

/// The schemas the admin session routes' annotations name.
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(AdminSessionView, AdoptSession)))]
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
#[utoipa::path(get, path = "/admin/v1/sessions", tag = "Admin", operation_id = "adminListSessions",
    responses((status = 200, description = "Every session", body = [AdminSessionView]),
        UpstreamUnreachable,
        (status = 504, description = "The upstream did not answer in time", body = ErrorBody)))]
pub async fn list_sessions(
    _admin: AdminCaller,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let upstream = upstream_statuses(&req, &state).await?;
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
#[utoipa::path(post, path = "/admin/v1/sessions/adopt", tag = "Admin",
    operation_id = "adminAdoptSession", request_body = AdoptSession,
    responses((status = 201, description = "Adopted", body = AdminSessionView),
        (status = 400, description = "A name is not a valid session name", body = ErrorBody),
        (status = 404, description = "No such tenant, or no such upstream session", body = ErrorBody),
        (status = 409, description = "Already owned, or the tenant already uses that name", body = ErrorBody),
        UpstreamUnreachable))]
pub async fn adopt_session(
    actor: Actor,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<AdoptSession>,
) -> Result<HttpResponse, ApiError> {
    let upstream = UpstreamSession::parse(&body.upstream_name)?;
    let name = SessionName::parse_new(&body.name)?;
    let statuses = upstream_statuses(&req, &state).await?;
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
    register_ingress(&state, body.tenant_id, &name, &upstream).await;
    let tenant_name = crate::store::sessions::tenant_name(&state.db, body.tenant_id).await?;
    let details = serde_json::json!({"tenant_id": body.tenant_id, "name": name.as_str()});
    let audit = Audit::new("session.adopt", "session", upstream.as_str(), details);
    audit::record(&state.db, &actor, &audit).await?;
    Ok(HttpResponse::Created().json(AdminSessionView {
        upstream_name: upstream.as_str().to_owned(),
        tenant_id: Some(body.tenant_id),
        tenant_name,
        name: Some(name.as_str().to_owned()),
        status: Some(status),
    }))
}

/// Registers an adopted session's ingress for every event before the adoption answers, so
/// its tenant's event log has the session's events from now on. A failure is logged and left
/// to the reconciler: the session is adopted either way.
async fn register_ingress(
    state: &AppState,
    tenant: Uuid,
    name: &SessionName,
    upstream: &UpstreamSession,
) {
    let registered = async {
        let tenant = crate::services::tenancy::tenants::find(&state.db, tenant).await?;
        let registrar = Registrar {
            db: &state.db,
            upstreams: state.upstreams(),
            quotas: &state.quotas,
            relay: &state.relay,
        };
        let session = SessionRef {
            tenant: &tenant,
            mode: Mode::Live,
            name: name.as_str(),
            upstream,
        };
        registrar.resync(&session).await.map_err(ApiError::from)
    };
    if let Err(e) = registered.await {
        tracing::warn!(session = %name, "registering an adopted session's ingress: {}", e.message());
    }
}

/// Deletes a session on the upstream, whoever owns it, and forgets its owner.
#[utoipa::path(delete, path = "/admin/v1/sessions/{upstream_name}", tag = "Admin",
    operation_id = "adminDeleteSession",
    params(("upstream_name" = String, Path, description = "The session's name on the hosted API")),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "Neither the upstream nor any tenant has the session", body = ErrorBody),
        UpstreamUnreachable))]
pub async fn delete_session(
    actor: Actor,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::not_found(format!("session `{path}` not found"));
    let upstream = UpstreamSession::parse(&path).map_err(|_| not_found())?;
    let path = format!("/v1/sessions/{}", upstream.as_str());
    let call = UpstreamCall::own(Method::DELETE, path, "/v1/sessions/{session}", None);
    let answer = call_upstream(&req, &state, "deleteSession", call).await?;
    let upstream_had_it = answer.status.is_success();
    if !upstream_had_it && answer.status != StatusCode::NOT_FOUND {
        return Err(refused("delete the session", answer.status).into());
    }
    let owner = state.sessions.forget_upstream(upstream.as_str()).await?;
    if !upstream_had_it && owner.is_none() {
        return Err(not_found());
    }
    let details =
        serde_json::json!({"tenant_id": owner.as_ref().map(|o| o.0), "name": owner.map(|o| o.1)});
    let audit = Audit::new("session.delete", "session", upstream.as_str(), details);
    audit::record(&state.db, &actor, &audit).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The upstream's sessions by name, with their status.
async fn upstream_statuses(
    req: &HttpRequest,
    state: &AppState,
) -> Result<HashMap<String, String>, ApiError> {
    // Without `all=true` the upstream leaves STOPPED sessions out (ENGINE.md §2 row 1).
    let call = UpstreamCall::own(
        Method::GET,
        "/v1/sessions?all=true".into(),
        "/v1/sessions",
        None,
    );
    let answer = call_upstream(req, state, "listSessions", call).await?;
    if !answer.status.is_success() {
        return Err(refused("list its sessions", answer.status).into());
    }
    let listed: Value = serde_json::from_slice(&answer.body)
        .map_err(|e| UpstreamError::after_sending(UpstreamErrorKind::MalformedJson(e)))?;
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

fn refused(action: &'static str, status: StatusCode) -> UpstreamError {
    UpstreamError::after_sending(UpstreamErrorKind::Refused { action, status })
}

/// One call of the gateway's own, through the gateway like every other.
async fn call_upstream(
    req: &HttpRequest,
    state: &AppState,
    operation: &'static str,
    mut call: UpstreamCall,
) -> Result<OwnAnswer, ApiError> {
    call.request_id = req
        .extensions()
        .get::<crate::telemetry::RequestId>()
        .map(|r| r.0.clone());
    let gateway = Gateway::new(&state.upstream, &state.quotas);
    Ok(gateway.call_own(operation, &call).await?)
}
