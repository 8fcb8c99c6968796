//! Usage from the rollups, for tenants (`GET /v1/usage`) and admins (per tenant, with top-up and
//! reset of the current month), and the organisation's upstream standing.

use crate::domain::Scope;
use crate::http::admin::audit::{self, Actor};
use crate::http::admin::tenants::{find_tenant, TenantView};
use crate::http::error::ApiError;
use crate::http::extract::{AdminCaller, TenantCaller};
use crate::http::quota_headers::QuotaHeaders;
use crate::http::tenant::ProxyState;
use crate::services::quota::TopUp;
use actix_web::{web, HttpRequest, HttpResponse};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

/// A tenant's usage this month, as every usage route answers it.
async fn usage_answer(
    state: &ProxyState,
    tenant: Uuid,
    monthly_requests: Option<i64>,
) -> Result<HttpResponse, ApiError> {
    let report = state
        .quotas
        .usage_report(&state.pool, tenant, monthly_requests)
        .await?;
    Ok(HttpResponse::Ok().json(report))
}

/// Records an admin's change to a tenant's month in the audit log, commits it together with the
/// change, and answers with the usage as it now stands.
async fn commit_audited(
    mut tx: Transaction<'static, Postgres>,
    actor: &Actor,
    action: &str,
    tenant: &TenantView,
    details: serde_json::Value,
    state: &ProxyState,
) -> Result<HttpResponse, ApiError> {
    let id = tenant.id.to_string();
    audit::record(&mut *tx, actor, action, "tenant", &id, details).await?;
    tx.commit().await?;
    usage_answer(state, tenant.id, tenant.quota.monthly_requests).await
}

/// This month's usage of the calling tenant: total and remaining, per day, per endpoint, and
/// refusals by reason.
#[utoipa::path(
    get,
    path = "/v1/usage",
    tag = "Usage",
    operation_id = "getUsage",
    responses(
        (status = 200, description = "This month's usage", body = crate::services::quota::UsageReport),
        (status = 401, description = "Missing or invalid API key", body = crate::http::error::ErrorBody),
        (status = 403, description = "The key lacks `usage:read`, or the tenant is suspended", body = crate::http::error::ErrorBody),
        (status = 503, description = "The database is unavailable", body = crate::http::error::ErrorBody),
    ),
    security(("bearer_key" = []), ("api_key" = []), ("rapidapi_key" = []))
)]
pub async fn tenant_usage(
    caller: TenantCaller,
    state: web::Data<ProxyState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::UsageRead)?;
    let tenant = &caller.tenant;
    let mut response = usage_answer(&state, tenant.id, tenant.quota.monthly_requests).await?;
    state.quotas.stamp(&mut response, tenant, None);
    Ok(response)
}

/// A tenant's usage this month.
#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant_id}/usage",
    tag = "Admin",
    operation_id = "adminGetTenantUsage",
    params(("tenant_id" = Uuid, Path, description = "The tenant's id")),
    responses(
        (status = 200, description = "This month's usage", body = crate::services::quota::UsageReport),
        (status = 401, description = "Missing or invalid admin token", body = crate::http::error::ErrorBody),
        (status = 404, description = "No such tenant", body = crate::http::error::ErrorBody),
    ),
    security(("admin_jwt" = []))
)]
pub async fn admin_tenant_usage(
    _admin: AdminCaller,
    state: web::Data<ProxyState>,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let tenant = find_tenant(&state.pool, path.into_inner()).await?;
    usage_answer(&state, tenant.id, tenant.quota.monthly_requests).await
}

/// Grants a tenant extra requests for the current month (audit-logged).
#[utoipa::path(
    post,
    path = "/admin/v1/tenants/{tenant_id}/usage/top-up",
    tag = "Admin",
    operation_id = "adminTopUpTenant",
    params(("tenant_id" = Uuid, Path, description = "The tenant's id")),
    request_body = TopUp,
    responses(
        (status = 200, description = "The usage after the top-up", body = crate::services::quota::UsageReport),
        (status = 400, description = "requests is not a positive number", body = crate::http::error::ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = crate::http::error::ErrorBody),
        (status = 404, description = "No such tenant", body = crate::http::error::ErrorBody),
    ),
    security(("admin_jwt" = []))
)]
pub async fn top_up(
    admin: AdminCaller,
    req: HttpRequest,
    state: web::Data<ProxyState>,
    path: web::Path<Uuid>,
    body: web::Json<TopUp>,
) -> Result<HttpResponse, ApiError> {
    let tenant = find_tenant(&state.pool, path.into_inner()).await?;
    let mut tx = state.pool.begin().await?;
    state
        .quotas
        .top_up(&mut tx, tenant.id, body.requests)
        .await?;
    let details = serde_json::json!({ "requests": body.requests });
    let actor = Actor::of(&admin, &req);
    commit_audited(tx, &actor, "quota.top_up", &tenant, details, &state).await
}

/// Gives a tenant its whole monthly quota back for the rest of the month (audit-logged).
#[utoipa::path(
    post,
    path = "/admin/v1/tenants/{tenant_id}/usage/reset",
    tag = "Admin",
    operation_id = "adminResetTenantMonth",
    params(("tenant_id" = Uuid, Path, description = "The tenant's id")),
    responses(
        (status = 200, description = "The usage after the reset", body = crate::services::quota::UsageReport),
        (status = 401, description = "Missing or invalid admin token", body = crate::http::error::ErrorBody),
        (status = 404, description = "No such tenant", body = crate::http::error::ErrorBody),
    ),
    security(("admin_jwt" = []))
)]
pub async fn reset_month(
    admin: AdminCaller,
    req: HttpRequest,
    state: web::Data<ProxyState>,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let tenant = find_tenant(&state.pool, path.into_inner()).await?;
    let mut tx = state.pool.begin().await?;
    state.quotas.reset_month(&mut tx, tenant.id).await?;
    let actor = Actor::of(&admin, &req);
    commit_audited(
        tx,
        &actor,
        "quota.reset",
        &tenant,
        serde_json::json!({}),
        &state,
    )
    .await
}

/// The organisation's standing on its upstream plan: budget, use this month, and what the
/// upstream itself last reported.
#[utoipa::path(
    get,
    path = "/admin/v1/upstream",
    tag = "Admin",
    operation_id = "adminGetUpstream",
    responses(
        (status = 200, description = "The organisation's upstream standing", body = crate::services::quota::UpstreamReport),
        (status = 401, description = "Missing or invalid admin token", body = crate::http::error::ErrorBody),
    ),
    security(("admin_jwt" = []))
)]
pub async fn upstream_standing(
    _admin: AdminCaller,
    state: web::Data<ProxyState>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.quotas.upstream_report(&state.pool).await?))
}
