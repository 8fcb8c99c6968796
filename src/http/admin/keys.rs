//! The admin API's tenant keys: issued, listed without secrets, revoked and rotated
//! (`services::tenancy::keys` does the work).

use crate::http::admin::answers::{
    InvalidQuery, KeyPath, MalformedBody, NoSuchKey, NoSuchTenant, TenantPath,
};
use crate::http::admin::tenants::PathTenant;
use crate::http::admin::PageQuery;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::services::tenancy::keys;
use crate::store::audit::Actor;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

pub use crate::services::tenancy::keys::{KeyCreated, KeyRotated, NewKeyRequest};
pub use crate::store::keys::KeyView;

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// How long the old key keeps working, in seconds (default 3600, at most 30 days).
    pub grace_seconds: Option<u64>,
}

/// The optional rotate body: none at all means the defaults, anything else must be a valid
/// `RotateRequest` (a typo'd field is 400 naming it, never silently the default grace).
fn rotate_request(body: &[u8]) -> Result<RotateRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(RotateRequest::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            ApiError::bad_request(format!("invalid body: {e}"))
        } else {
            ApiError::bad_request(format!("malformed JSON: {e}"))
        }
    })
}

/// Issue a key for a tenant (`"mode": "test"` for a test key, served by the simulator); the plaintext key is in this answer only
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant_id}/keys", tag = "Admin",
    operation_id = "adminCreateKey", params(TenantPath), request_body = NewKeyRequest,
    responses((status = 201, description = "The new key, with its plaintext", body = KeyCreated),
        (status = 400, description = "Malformed body, or a mode other than live or test", body = ErrorBody),
        NoSuchTenant,
        (status = 422, description = "Unknown scope, invalid session name or past expiry", body = ErrorBody)))]
pub async fn create_key(
    actor: Actor,
    state: web::Data<AppState>,
    path: web::Path<TenantPath>,
    body: web::Json<NewKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    let created = keys::create(&state.db, &actor, path.tenant_id, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(created))
}

/// List a tenant's keys (never their secrets), newest first
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant_id}/keys", tag = "Admin",
    operation_id = "adminListKeys", params(TenantPath, PageQuery),
    responses((status = 200, description = "One page of keys", body = KeyPage), InvalidQuery,
        NoSuchTenant))]
pub async fn list_keys(
    named: PathTenant,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (db, tenant) = (&named.state.db, named.tenant.id);
    let found = crate::store::keys::list(db, tenant, page.window()).await?;
    Ok(page.answer(found))
}

/// Revoke a key at once (also ends a rotation's grace period); every replica refuses it within a second
#[utoipa::path(delete, path = "/admin/v1/tenants/{tenant_id}/keys/{key_id}", tag = "Admin",
    operation_id = "adminRevokeKey", params(KeyPath),
    responses((status = 204, description = "Revoked"), NoSuchKey))]
pub async fn revoke_key(
    actor: Actor,
    state: web::Data<AppState>,
    path: web::Path<KeyPath>,
) -> Result<HttpResponse, ApiError> {
    let KeyPath {
        tenant_id: tenant,
        key_id: key,
    } = path.into_inner();
    keys::revoke(&state.db, &actor, tenant, key).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Issue a replacement key with the same name, scopes and sessions; the old key keeps working for the grace period
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant_id}/keys/{key_id}/rotate", tag = "Admin",
    operation_id = "adminRotateKey", params(KeyPath),
    request_body(content = RotateRequest, description = "Optional; the default grace is one hour"),
    responses((status = 201, description = "The replacement key, with its plaintext", body = KeyRotated),
        MalformedBody, NoSuchKey,
        (status = 409, description = "The key is already revoked", body = ErrorBody),
        (status = 422, description = "Grace period too long", body = ErrorBody)))]
pub async fn rotate_key(
    actor: Actor,
    state: web::Data<AppState>,
    path: web::Path<KeyPath>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let KeyPath {
        tenant_id: tenant,
        key_id: key,
    } = path.into_inner();
    let grace = rotate_request(&body)?.grace_seconds;
    let rotated = keys::rotate(&state.db, &actor, tenant, key, grace).await?;
    Ok(HttpResponse::Created().json(rotated))
}
