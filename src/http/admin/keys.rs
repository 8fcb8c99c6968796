//! Tenant keys: issued once in plaintext, stored as an argon2id hash, listed without secrets,
//! revoked and rotated with a grace period. Every change is announced so every replica's
//! cache drops the key within a second.

use crate::db::Db;
use crate::domain::SessionName;
use crate::domain::{api_key as tenant_key, Scopes};
use crate::http::admin::audit::{self, Actor};
use crate::http::admin::tenants::find_tenant;
use crate::http::admin::{PageQuery, Paging};
use crate::http::error::ApiError;
use crate::http::extract::AdminCaller;
use crate::services::auth::{password, Change};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Longest grace a rotation may give the old key.
const MAX_GRACE_SECS: u64 = 30 * 86_400;
const DEFAULT_GRACE_SECS: u64 = 3_600;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyRequest {
    #[schema(example = "billing bot")]
    pub name: String,
    /// Any of `sessions:read`, `sessions:write`, `messages:send`, `groups:read`, `groups:write`,
    /// `channels:read`, `channels:write`, `contacts:read`, `presence:read`, `presence:write`,
    /// `webhooks:read`, `webhooks:write`, `usage:read`, or `*`.
    #[schema(example = json!(["messages:send", "sessions:read"]))]
    pub scopes: Vec<String>,
    /// Limits the key to these of the tenant's sessions; absent: all of them.
    pub sessions: Option<Vec<String>>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyCreated {
    /// The key id the key routes take.
    pub id: String,
    /// The plaintext key: shown this once, never stored.
    #[schema(example = "wagw_3kT9xQ2mLp0Z_...")]
    pub key: String,
    pub prefix: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub sessions: Option<Vec<String>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct KeyView {
    pub id: String,
    pub prefix: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub sessions: Option<Vec<String>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// In the future while a rotated key's grace period runs.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The key that replaced this one by rotation.
    pub replaced_by: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyPage {
    pub items: Vec<KeyView>,
    #[serde(flatten)]
    #[schema(inline)]
    pub paging: Paging,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// How long the old key keeps working, in seconds (default 3600, at most 30 days).
    pub grace_seconds: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyRotated {
    #[serde(flatten)]
    pub key: KeyCreated,
    /// The old key's id and when it stops working.
    pub replaces: String,
    pub old_key_valid_until: DateTime<Utc>,
}

const VIEW_COLUMNS: &str =
    "id, prefix, name, scopes, sessions, expires_at, created_at, last_used_at, revoked_at, replaced_by";

struct KeySpec {
    name: String,
    scopes: Scopes,
    sessions: Option<Vec<String>>,
    expires_at: Option<DateTime<Utc>>,
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

fn check(req: NewKeyRequest) -> Result<KeySpec, ApiError> {
    let name = req.name.trim().to_owned();
    if name.is_empty() || name.len() > 100 {
        return Err(ApiError::unprocessable("name must be 1 to 100 characters"));
    }
    let scopes = Scopes::parse_all(&req.scopes)?;
    let sessions = req
        .sessions
        .map(|list| {
            let mut names = list
                .iter()
                .map(|s| SessionName::parse(s).map(|n| n.as_str().to_owned()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ApiError::unprocessable(e.message().to_owned()))?;
            names.sort();
            names.dedup();
            Ok::<_, ApiError>(names)
        })
        .transpose()?;
    if req.expires_at.is_some_and(|t| t <= Utc::now()) {
        return Err(ApiError::unprocessable("expires_at must be in the future"));
    }
    Ok(KeySpec {
        name,
        scopes,
        sessions,
        expires_at: req.expires_at,
    })
}

/// Issues a key in `tx`: the plaintext is returned once, only its hash is written.
async fn issue(
    tx: &mut sqlx::PgConnection,
    tenant: Uuid,
    spec: &KeySpec,
) -> Result<KeyCreated, ApiError> {
    let new = tenant_key::generate();
    let hash = password::hash(new.secret.clone()).await?;
    let prefix = tenant_key::display_prefix(&new.id);
    let created_at: DateTime<Utc> = sqlx::query_scalar(
        "INSERT INTO tenant_keys (id, tenant_id, name, prefix, secret_hash, scopes, sessions, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING created_at",
    )
    .bind(&new.id)
    .bind(tenant)
    .bind(&spec.name)
    .bind(&prefix)
    .bind(hash)
    .bind(spec.scopes.names())
    .bind(&spec.sessions)
    .bind(spec.expires_at)
    .fetch_one(&mut *tx)
    .await?;
    Ok(KeyCreated {
        id: new.id,
        key: new.plaintext,
        prefix,
        name: spec.name.clone(),
        scopes: spec.scopes.names(),
        sessions: spec.sessions.clone(),
        expires_at: spec.expires_at,
        created_at,
    })
}

/// Creates a key for a tenant (the API and `wa-gateway admin create-key`).
pub async fn insert_key(
    pool: &Db,
    actor: &Actor,
    tenant: Uuid,
    req: NewKeyRequest,
) -> Result<KeyCreated, ApiError> {
    find_tenant(pool, tenant).await?;
    let spec = check(req)?;
    let mut tx = pool.begin().await?;
    let created = issue(&mut tx, tenant, &spec).await?;
    audit::record(
        &mut *tx,
        actor,
        "key.create",
        "key",
        &created.id,
        serde_json::json!({"tenant_id": tenant, "name": created.name, "scopes": created.scopes,
                           "sessions": created.sessions, "expires_at": created.expires_at}),
    )
    .await?;
    tx.commit().await?;
    Ok(created)
}

/// Issue a key for a tenant; the plaintext key is in this answer only
#[utoipa::path(
    post,
    path = "/admin/v1/tenants/{tenant_id}/keys",
    tag = "Admin",
    operation_id = "adminCreateKey",
    params(("tenant_id" = Uuid, Path, description = "The tenant's id")),
    request_body = NewKeyRequest,
    responses(
        (status = 201, description = "The new key, with its plaintext", body = KeyCreated),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 422, description = "Unknown scope, invalid session name or past expiry", body = ErrorBody),
    ),
    security(("admin_jwt" = []))
)]
pub async fn create_key(
    admin: AdminCaller,
    req: HttpRequest,
    pool: web::Data<Db>,
    path: web::Path<Uuid>,
    body: web::Json<NewKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    let created = insert_key(
        pool.get_ref(),
        &Actor::of(&admin, &req),
        path.into_inner(),
        body.into_inner(),
    )
    .await?;
    Ok(HttpResponse::Created().json(created))
}

/// List a tenant's keys (never their secrets), newest first
#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant_id}/keys",
    tag = "Admin",
    operation_id = "adminListKeys",
    params(("tenant_id" = Uuid, Path, description = "The tenant's id"), PageQuery),
    responses(
        (status = 200, description = "One page of keys", body = KeyPage),
        (status = 400, description = "Invalid query", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ),
    security(("admin_jwt" = []))
)]
pub async fn list_keys(
    _admin: AdminCaller,
    pool: web::Data<Db>,
    path: web::Path<Uuid>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant = path.into_inner();
    find_tenant(pool.get_ref(), tenant).await?;
    let (limit, offset, page, per_page) = page.limit_offset();
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM tenant_keys WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_one(pool.get_ref())
        .await?;
    let items: Vec<KeyView> = sqlx::query_as(&format!(
        "SELECT {VIEW_COLUMNS} FROM tenant_keys WHERE tenant_id = $1
         ORDER BY created_at DESC, id LIMIT $2 OFFSET $3"
    ))
    .bind(tenant)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool.get_ref())
    .await?;
    Ok(HttpResponse::Ok().json(KeyPage {
        items,
        paging: Paging {
            page,
            per_page,
            total,
        },
    }))
}

fn no_key(key: &str) -> ApiError {
    ApiError::not_found(format!("the tenant has no key with id {key}"))
}

/// Revoke a key at once (also ends a rotation's grace period); every replica refuses it within a second
#[utoipa::path(
    delete,
    path = "/admin/v1/tenants/{tenant_id}/keys/{key_id}",
    tag = "Admin",
    operation_id = "adminRevokeKey",
    params(
        ("tenant_id" = Uuid, Path, description = "The tenant's id"),
        ("key_id" = String, Path, description = "The key's id"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such key for this tenant", body = ErrorBody),
    ),
    security(("admin_jwt" = []))
)]
pub async fn revoke_key(
    admin: AdminCaller,
    req: HttpRequest,
    pool: web::Data<Db>,
    path: web::Path<(Uuid, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, key) = path.into_inner();
    let mut tx = pool.begin().await?;
    let found: Option<Option<DateTime<Utc>>> = sqlx::query_scalar(
        "UPDATE tenant_keys SET revoked_at = CASE WHEN revoked_at IS NULL OR revoked_at > now() THEN now() ELSE revoked_at END
         WHERE id = $1 AND tenant_id = $2 RETURNING revoked_at",
    )
    .bind(&key)
    .bind(tenant)
    .fetch_optional(&mut *tx)
    .await?;
    if found.is_none() {
        return Err(no_key(&key));
    }
    Change::Key(key.clone()).announce(&mut *tx).await?;
    audit::record(
        &mut *tx,
        &Actor::of(&admin, &req),
        "key.revoke",
        "key",
        &key,
        serde_json::json!({"tenant_id": tenant}),
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(sqlx::FromRow)]
struct RotatedRow {
    name: String,
    scopes: Vec<String>,
    sessions: Option<Vec<String>>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

/// Issue a replacement key with the same name, scopes and sessions; the old key keeps working for the grace period
#[utoipa::path(
    post,
    path = "/admin/v1/tenants/{tenant_id}/keys/{key_id}/rotate",
    tag = "Admin",
    operation_id = "adminRotateKey",
    params(
        ("tenant_id" = Uuid, Path, description = "The tenant's id"),
        ("key_id" = String, Path, description = "The key's id"),
    ),
    request_body(content = RotateRequest, description = "Optional; the default grace is one hour"),
    responses(
        (status = 201, description = "The replacement key, with its plaintext", body = KeyRotated),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such key for this tenant", body = ErrorBody),
        (status = 409, description = "The key is already revoked", body = ErrorBody),
        (status = 422, description = "Grace period too long", body = ErrorBody),
    ),
    security(("admin_jwt" = []))
)]
pub async fn rotate_key(
    admin: AdminCaller,
    req: HttpRequest,
    pool: web::Data<Db>,
    path: web::Path<(Uuid, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (tenant, key) = path.into_inner();
    let grace = rotate_request(&body)?
        .grace_seconds
        .unwrap_or(DEFAULT_GRACE_SECS);
    if grace > MAX_GRACE_SECS {
        return Err(ApiError::unprocessable(format!(
            "grace_seconds must be at most {MAX_GRACE_SECS}"
        )));
    }
    let mut tx = pool.begin().await?;
    let old: RotatedRow = sqlx::query_as(
        "SELECT name, scopes, sessions, expires_at, revoked_at FROM tenant_keys
         WHERE id = $1 AND tenant_id = $2 FOR UPDATE",
    )
    .bind(&key)
    .bind(tenant)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| no_key(&key))?;
    if old.revoked_at.is_some() {
        return Err(ApiError::conflict(
            "this key is already revoked or being rotated; rotate its replacement instead",
        ));
    }
    let spec = KeySpec {
        name: old.name,
        scopes: Scopes::from_stored(&old.scopes),
        sessions: old.sessions,
        expires_at: old.expires_at,
    };
    let created = issue(&mut tx, tenant, &spec).await?;
    let valid_until: DateTime<Utc> = sqlx::query_scalar(
        "UPDATE tenant_keys SET revoked_at = now() + make_interval(secs => $2), replaced_by = $3
         WHERE id = $1 RETURNING revoked_at",
    )
    .bind(&key)
    .bind(grace as f64)
    .bind(&created.id)
    .fetch_one(&mut *tx)
    .await?;
    Change::Key(key.clone()).announce(&mut *tx).await?;
    audit::record(
        &mut *tx,
        &Actor::of(&admin, &req),
        "key.rotate",
        "key",
        &key,
        serde_json::json!({"tenant_id": tenant, "replaced_by": created.id, "grace_seconds": grace}),
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(KeyRotated {
        key: created,
        replaces: key,
        old_key_valid_until: valid_until,
    }))
}
