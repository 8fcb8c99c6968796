//! Tenants: who the gateway serves, on which plan, with which limits.
//!
//! Deleting a tenant deletes its row and with it (by foreign keys) its keys, session names,
//! idempotency records and usage rollups; the audit log keeps the history. Its sessions on
//! the upstream are deleted through the upstream client right away; any the upstream could
//! not confirm stay in `upstream_session_deletions` and are retried on the next tenant
//! deletion (and can be inspected by an operator).

use crate::db::constraint_violated;
use crate::db::Db;
use crate::http::admin::audit::{self, Actor};
use crate::http::admin::{PageQuery, Paging};
use crate::http::error::ApiError;
use crate::http::extract::AdminCaller;
use crate::services::auth::{Auth, Change};
use crate::services::upstream::UpstreamCall;
use crate::services::upstream::UpstreamClient;
use actix_web::http::header::HeaderMap;
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    Basic,
    Pro,
    Ultra,
    Mega,
    Custom,
}

impl Plan {
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Basic => "basic",
            Plan::Pro => "pro",
            Plan::Ultra => "ultra",
            Plan::Mega => "mega",
            Plan::Custom => "custom",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Plan::Basic,
            Plan::Pro,
            Plan::Ultra,
            Plan::Mega,
            Plan::Custom,
        ]
        .into_iter()
        .find(|p| p.as_str() == raw)
    }

    /// The hosted API's plan table (UPSTREAM.md); `None` for `custom`.
    pub fn quota(self) -> Option<QuotaBody> {
        let q = |m, r, s| {
            Some(QuotaBody {
                monthly_requests: Some(m),
                requests_per_second: Some(r),
                max_sessions: s,
            })
        };
        match self {
            Plan::Basic => q(100, 10, Some(1)),
            Plan::Pro => q(1_000, 10, Some(3)),
            Plan::Ultra => q(10_000, 20, Some(10)),
            Plan::Mega => q(50_000, 25, None),
            Plan::Custom => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    Active,
    /// Every call with any of the tenant's keys answers 403.
    Suspended,
}

impl TenantStatus {
    fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
        }
    }
}

/// Limits; a missing or `null` field means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaBody {
    pub monthly_requests: Option<i64>,
    pub requests_per_second: Option<i32>,
    pub max_sessions: Option<i32>,
}

/// Bounds far beyond any plan and far from the integer edge, so sums with top-ups and
/// multiples (the per-key limiter) never overflow.
pub const MAX_MONTHLY_REQUESTS: i64 = 1_000_000_000_000;
pub const MAX_REQUESTS_PER_SECOND: i32 = 100_000;
pub const MAX_SESSIONS: i32 = 100_000;

impl QuotaBody {
    fn check(&self) -> Result<(), ApiError> {
        let out_of = |field: &str, min: i64, max: i64, value: Option<i64>| match value {
            Some(v) if !(min..=max).contains(&v) => Err(ApiError::unprocessable(format!(
                "quota.{field} must be between {min} and {max}"
            ))),
            _ => Ok(()),
        };
        out_of(
            "monthly_requests",
            0,
            MAX_MONTHLY_REQUESTS,
            self.monthly_requests,
        )?;
        out_of(
            "requests_per_second",
            1,
            MAX_REQUESTS_PER_SECOND.into(),
            self.requests_per_second.map(i64::from),
        )?;
        out_of(
            "max_sessions",
            0,
            MAX_SESSIONS.into(),
            self.max_sessions.map(i64::from),
        )
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// A unique slug: 1 to 63 characters of a-z, 0-9 and `-`, starting with a letter or digit.
    #[schema(example = "acme")]
    pub name: String,
    pub plan: Plan,
    /// Only with plan `custom` (required there).
    pub quota: Option<QuotaBody>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantPatch {
    pub name: Option<String>,
    /// A plan other than `custom` sets the quota from the plan table.
    pub plan: Option<Plan>,
    /// Setting a quota makes the plan `custom`.
    pub quota: Option<QuotaBody>,
    pub status: Option<TenantStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TenantView {
    pub id: Uuid,
    pub name: String,
    pub plan: Plan,
    pub quota: QuotaBody,
    pub status: TenantStatus,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TenantPage {
    pub items: Vec<TenantView>,
    #[serde(flatten)]
    #[schema(inline)]
    pub paging: Paging,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TenantDeleted {
    pub id: Uuid,
    /// Upstream sessions deleted now.
    pub upstream_sessions_deleted: u32,
    /// Upstream sessions recorded for a later retry (the upstream did not confirm).
    pub upstream_sessions_pending: u32,
}

#[derive(sqlx::FromRow)]
struct TenantRow {
    id: Uuid,
    name: String,
    plan: String,
    monthly_requests: Option<i64>,
    requests_per_second: Option<i32>,
    max_sessions: Option<i32>,
    status: String,
    created_at: DateTime<Utc>,
}

impl From<TenantRow> for TenantView {
    fn from(r: TenantRow) -> Self {
        TenantView {
            id: r.id,
            name: r.name,
            plan: Plan::parse(&r.plan).unwrap_or(Plan::Custom),
            quota: QuotaBody {
                monthly_requests: r.monthly_requests,
                requests_per_second: r.requests_per_second,
                max_sessions: r.max_sessions,
            },
            status: if r.status == "suspended" {
                TenantStatus::Suspended
            } else {
                TenantStatus::Active
            },
            created_at: r.created_at,
        }
    }
}

const COLUMNS: &str =
    "id, name, plan, monthly_requests, requests_per_second, max_sessions, status, created_at";

fn check_name(name: &str) -> Result<(), ApiError> {
    let b = name.as_bytes();
    let ok = (1..=63).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
    ok.then_some(()).ok_or_else(|| {
        ApiError::unprocessable(
            "name must be 1 to 63 characters of a-z, 0-9 and `-`, starting with a letter or digit",
        )
    })
}

fn name_taken(e: sqlx::Error, name: &str) -> ApiError {
    if constraint_violated(&e, "tenants_name_key") {
        ApiError::conflict(format!("a tenant named `{name}` already exists"))
    } else {
        e.into()
    }
}

/// The quota a plan gives, or the custom one given; 422 when they do not fit together.
fn resolve_quota(plan: Plan, quota: Option<QuotaBody>) -> Result<QuotaBody, ApiError> {
    match (plan.quota(), quota) {
        (Some(_), Some(_)) => Err(ApiError::unprocessable(format!(
            "plan `{}` sets its own quota; use plan `custom` to give one",
            plan.as_str()
        ))),
        (Some(q), None) => Ok(q),
        (None, Some(q)) => q.check().map(|_| q),
        (None, None) => Err(ApiError::unprocessable(
            "plan `custom` needs a quota (null fields mean unlimited)",
        )),
    }
}

/// Creates a tenant (the API and `wa-gateway admin create-tenant`).
pub async fn insert_tenant(
    pool: &Db,
    actor: &Actor,
    new: NewTenant,
) -> Result<TenantView, ApiError> {
    check_name(&new.name)?;
    let quota = resolve_quota(new.plan, new.quota)?;
    let mut tx = pool.begin().await?;
    let row: TenantRow = sqlx::query_as(&format!(
        "INSERT INTO tenants (id, name, plan, monthly_requests, requests_per_second, max_sessions)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(&new.name)
    .bind(new.plan.as_str())
    .bind(quota.monthly_requests)
    .bind(quota.requests_per_second)
    .bind(quota.max_sessions)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| name_taken(e, &new.name))?;
    let view = TenantView::from(row);
    audit::record(
        &mut *tx,
        actor,
        "tenant.create",
        "tenant",
        &view.id.to_string(),
        serde_json::json!({"name": view.name, "plan": view.plan, "quota": view.quota}),
    )
    .await?;
    tx.commit().await?;
    Ok(view)
}

pub async fn find_tenant(pool: &Db, id: Uuid) -> Result<TenantView, ApiError> {
    let row: Option<TenantRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM tenants WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?;
    row.map(TenantView::from)
        .ok_or_else(|| ApiError::not_found(format!("no tenant with id {id}")))
}

/// Create a tenant
#[utoipa::path(
    post,
    path = "/admin/v1/tenants",
    tag = "Admin",
    operation_id = "adminCreateTenant",
    request_body = NewTenant,
    responses(
        (status = 201, description = "The new tenant", body = TenantView),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 422, description = "Invalid name, plan or quota", body = ErrorBody),
    ),
    security(("admin_jwt" = []))
)]
pub async fn create_tenant(
    admin: AdminCaller,
    req: HttpRequest,
    pool: web::Data<Db>,
    body: web::Json<NewTenant>,
) -> Result<HttpResponse, ApiError> {
    let view = insert_tenant(pool.get_ref(), &Actor::of(&admin, &req), body.into_inner()).await?;
    Ok(HttpResponse::Created().json(view))
}

/// List tenants by name, paged
#[utoipa::path(
    get,
    path = "/admin/v1/tenants",
    tag = "Admin",
    operation_id = "adminListTenants",
    params(PageQuery),
    responses(
        (status = 200, description = "One page of tenants", body = TenantPage),
        (status = 400, description = "Invalid query", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
    ),
    security(("admin_jwt" = []))
)]
pub async fn list_tenants(
    _admin: AdminCaller,
    pool: web::Data<Db>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (limit, offset, page, per_page) = page.limit_offset();
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants")
        .fetch_one(pool.get_ref())
        .await?;
    let rows: Vec<TenantRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tenants ORDER BY name LIMIT $1 OFFSET $2"
    ))
    .bind(limit)
    .bind(offset)
    .fetch_all(pool.get_ref())
    .await?;
    Ok(HttpResponse::Ok().json(TenantPage {
        items: rows.into_iter().map(Into::into).collect(),
        paging: Paging {
            page,
            per_page,
            total,
        },
    }))
}

/// Get a tenant
#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant_id}",
    tag = "Admin",
    operation_id = "adminGetTenant",
    params(("tenant_id" = Uuid, Path, description = "The tenant's id")),
    responses(
        (status = 200, description = "The tenant", body = TenantView),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ),
    security(("admin_jwt" = []))
)]
pub async fn get_tenant(
    _admin: AdminCaller,
    pool: web::Data<Db>,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(find_tenant(pool.get_ref(), path.into_inner()).await?))
}

/// Rename, re-plan, re-quota, suspend or reactivate a tenant; takes effect on every replica within a second
#[utoipa::path(
    patch,
    path = "/admin/v1/tenants/{tenant_id}",
    tag = "Admin",
    operation_id = "adminUpdateTenant",
    params(("tenant_id" = Uuid, Path, description = "The tenant's id")),
    request_body = TenantPatch,
    responses(
        (status = 200, description = "The updated tenant", body = TenantView),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 422, description = "Invalid name, plan or quota", body = ErrorBody),
    ),
    security(("admin_jwt" = []))
)]
pub async fn update_tenant(
    admin: AdminCaller,
    req: HttpRequest,
    auth: web::Data<Auth>,
    pool: web::Data<Db>,
    path: web::Path<Uuid>,
    body: web::Json<TenantPatch>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let patch = body.into_inner();
    if let Some(name) = &patch.name {
        check_name(name)?;
    }
    let current = find_tenant(pool.get_ref(), id).await?;
    let (plan, quota) = match (patch.plan, patch.quota.clone()) {
        (None, None) => (current.plan, current.quota.clone()),
        (Some(Plan::Custom), None) => (Plan::Custom, current.quota.clone()),
        (None | Some(Plan::Custom), Some(quota)) => {
            (Plan::Custom, resolve_quota(Plan::Custom, Some(quota))?)
        }
        (Some(plan), quota) => (plan, resolve_quota(plan, quota)?),
    };
    let name = patch.name.clone().unwrap_or(current.name.clone());
    let status = patch.status.unwrap_or(current.status);
    let mut tx = pool.begin().await?;
    let row: Option<TenantRow> = sqlx::query_as(&format!(
        "UPDATE tenants SET name = $2, plan = $3, monthly_requests = $4, requests_per_second = $5,
                max_sessions = $6, status = $7
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(&name)
    .bind(plan.as_str())
    .bind(quota.monthly_requests)
    .bind(quota.requests_per_second)
    .bind(quota.max_sessions)
    .bind(status.as_str())
    .fetch_optional(&mut *tx)
    .await
    .map_err(|e| name_taken(e, &name))?;
    let view = TenantView::from(
        row.ok_or_else(|| ApiError::not_found(format!("no tenant with id {id}")))?,
    );
    Change::Tenant(id).announce(&mut *tx).await?;
    audit::record(
        &mut *tx,
        &Actor::of(&admin, &req),
        if status != current.status && status == TenantStatus::Suspended {
            "tenant.suspend"
        } else if status != current.status {
            "tenant.reactivate"
        } else {
            "tenant.update"
        },
        "tenant",
        &id.to_string(),
        serde_json::json!({"before": current, "after": view}),
    )
    .await?;
    tx.commit().await?;
    // This replica at once (a new quota applies to the very next call); the others as the
    // announcement reaches them.
    auth.apply(&Change::Tenant(id)).await;
    Ok(HttpResponse::Ok().json(view))
}

/// Delete a tenant: its keys stop working at once, its data is deleted and its upstream sessions are deleted
#[utoipa::path(
    delete,
    path = "/admin/v1/tenants/{tenant_id}",
    tag = "Admin",
    operation_id = "adminDeleteTenant",
    params(("tenant_id" = Uuid, Path, description = "The tenant's id")),
    responses(
        (status = 200, description = "Deleted", body = TenantDeleted),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ),
    security(("admin_jwt" = []))
)]
pub async fn delete_tenant(
    admin: AdminCaller,
    req: HttpRequest,
    pool: web::Data<Db>,
    client: web::Data<UpstreamClient>,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let mut tx = pool.begin().await?;
    let tenant: Option<TenantRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tenants WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let tenant = TenantView::from(
        tenant.ok_or_else(|| ApiError::not_found(format!("no tenant with id {id}")))?,
    );
    // Recorded first, in the same transaction: if the upstream call fails or we crash, the
    // sessions are still known and will be deleted later.
    let sessions: Vec<String> = sqlx::query_scalar(
        "INSERT INTO upstream_session_deletions (upstream_name, tenant_id)
         SELECT upstream_name, tenant_id FROM sessions WHERE tenant_id = $1
         ON CONFLICT (upstream_name) DO NOTHING RETURNING upstream_name",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    let keys: Vec<String> = sqlx::query_scalar(
        "UPDATE tenant_keys SET revoked_at = now()
         WHERE tenant_id = $1 AND (revoked_at IS NULL OR revoked_at > now()) RETURNING id",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM tenants WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    Change::Tenant(id).announce(&mut *tx).await?;
    audit::record(
        &mut *tx,
        &Actor::of(&admin, &req),
        "tenant.delete",
        "tenant",
        &id.to_string(),
        serde_json::json!({"tenant": tenant, "revoked_keys": keys, "upstream_sessions": sessions.len()}),
    )
    .await?;
    tx.commit().await?;

    let (deleted, pending) = delete_pending_upstream_sessions(pool.get_ref(), &client).await;
    Ok(HttpResponse::Ok().json(TenantDeleted {
        id,
        upstream_sessions_deleted: deleted,
        upstream_sessions_pending: pending,
    }))
}

/// Deletes the recorded upstream sessions that are due (this tenant's, and earlier failures
/// whose backoff has passed); answers how many were deleted and how many remain recorded.
/// Also run in the background (`webhooks::delivery`), so a failure does not wait for the next
/// tenant deletion. Rows are claimed by moving `next_attempt_at` forward, so replicas never
/// work on the same one at once.
pub(crate) async fn delete_pending_upstream_sessions(
    pool: &Db,
    client: &UpstreamClient,
) -> (u32, u32) {
    let names: Vec<String> = match sqlx::query_scalar(
        "UPDATE upstream_session_deletions SET next_attempt_at = now() + interval '60 seconds'
          WHERE upstream_name IN (
                SELECT upstream_name FROM upstream_session_deletions
                 WHERE next_attempt_at <= now()
                 ORDER BY requested_at LIMIT 100 FOR UPDATE SKIP LOCKED)
          RETURNING upstream_name",
    )
    .fetch_all(pool)
    .await
    {
        Ok(names) => names,
        Err(e) => {
            tracing::warn!("reading pending upstream session deletions: {e}");
            return (0, 0);
        }
    };
    let headers = HeaderMap::new();
    let (mut deleted, mut pending) = (0, 0);
    for name in names {
        let call = UpstreamCall {
            method: Method::DELETE,
            path_and_query: format!("/v1/sessions/{name}"),
            body: None,
            headers: &headers,
            request_id: None,
            route: "/v1/sessions/{session}",
            retryable: false,
        };
        let outcome = match client.send(&call).await {
            Ok(a) if a.status().is_success() || a.status() == StatusCode::NOT_FOUND => Ok(()),
            Ok(a) => Err(format!("the upstream answered {}", a.status())),
            Err(e) => Err(e.to_string()),
        };
        let written = match &outcome {
            Ok(()) => {
                deleted += 1;
                sqlx::query("DELETE FROM upstream_session_deletions WHERE upstream_name = $1")
                    .bind(&name)
                    .execute(pool)
                    .await
            }
            Err(why) => {
                pending += 1;
                tracing::warn!(session = %name, "deleting an upstream session failed: {why}");
                // Backoff: 2, 4, 8 ... seconds, at most 5 minutes.
                sqlx::query(
                    "UPDATE upstream_session_deletions
                        SET attempts = attempts + 1, last_error = $2,
                            next_attempt_at = now() + make_interval(secs => LEAST(power(2, attempts + 1), 300))
                      WHERE upstream_name = $1",
                )
                .bind(&name)
                .bind(why)
                .execute(pool)
                .await
            }
        };
        if let Err(e) = written {
            tracing::warn!("recording an upstream session deletion: {e}");
        }
    }
    (deleted, pending)
}
