//! `/v1/sessions/{session}/pacing`: a tenant reads (`sessions:read`), sets and removes
//! (`sessions:write`) the send pacing of one of its sessions. Another tenant's session, or a
//! session of the other mode (a test key's, for a live key), answers 404 like a missing one.

use crate::domain::pacing::Policy;
use crate::domain::UpstreamSession;
use crate::http::admin::answers::{NoSuchSession, SessionPath, WritesSessions};
use crate::http::error::ApiError;
use crate::http::extract::TenantCaller;
use crate::http::state::AppState;
use crate::http::tenant::ownership::owned_session;
use crate::services::pacing::SessionPacingView;
use actix_web::{web, HttpResponse};

/// The caller's session behind the path, and its pacing as it now stands.
async fn answer(
    state: &AppState,
    caller: &TenantCaller,
    session: &str,
    change: Option<Option<&Policy>>,
) -> Result<HttpResponse, ApiError> {
    let (name, upstream): (_, UpstreamSession) =
        owned_session(&state.sessions, caller, session).await?;
    let tenant = caller.tenant.id;
    if let Some(policy) = change {
        state.pacing.set_own(tenant, &upstream, policy).await?;
    }
    let view: SessionPacingView = state.pacing.view(tenant, name.as_str(), &upstream).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Get the session's send pacing (gateway addition)
///
/// Its own policy, the tenant's default and ceiling, the policy in effect, and where its line
/// of paced sends stands.
#[utoipa::path(get, path = "/v1/sessions/{session}/pacing", tag = "Sessions",
    operation_id = "getSessionPacing", params(SessionPath),
    responses((status = 200, description = "The session's pacing", body = SessionPacingView), (status = 403, description = "The key lacks `sessions:read`", body = ErrorBody), NoSuchSession))]
pub async fn get_pacing(
    path: web::Path<SessionPath>,
    caller: TenantCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, &caller, &path.session, None).await
}

/// Set the session's own send pacing (gateway addition)
///
/// Its sends then wait their turn in arrival order, one at a time, across every replica, each
/// at least `minIntervalMs` (plus a random part of `jitterMs`) after the upstream answered the
/// one before. A limit left out (or null) is no limit of its own; the tenant's ceiling still
/// applies, and a value looser than the ceiling is 400 naming the field. A send that would
/// wait longer than the gateway waits (`WAGW_PACING_MAX_WAIT_MS`) is 429 at once.
#[utoipa::path(put, path = "/v1/sessions/{session}/pacing", tag = "Sessions",
    operation_id = "setSessionPacing", params(SessionPath), request_body = Policy,
    responses((status = 200, description = "The session's pacing, as set", body = SessionPacingView), (status = 400, description = "A value that is not a whole number within its bounds, an unknown field, or a value looser than the tenant's ceiling", body = ErrorBody), WritesSessions, NoSuchSession))]
pub async fn set_pacing(
    path: web::Path<SessionPath>,
    caller: TenantCaller,
    state: web::Data<AppState>,
    body: web::Json<Policy>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, &caller, &path.session, Some(Some(&body))).await
}

/// Remove the session's own send pacing (gateway addition)
///
/// The tenant's default, if any, applies again, within its ceiling.
#[utoipa::path(delete, path = "/v1/sessions/{session}/pacing", tag = "Sessions",
    operation_id = "deleteSessionPacing", params(SessionPath),
    responses((status = 200, description = "The session's pacing, without a policy of its own", body = SessionPacingView), WritesSessions, NoSuchSession))]
pub async fn delete_pacing(
    path: web::Path<SessionPath>,
    caller: TenantCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, &caller, &path.session, Some(None)).await
}
