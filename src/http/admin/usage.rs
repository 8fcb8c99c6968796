//! Usage from the rollups, for tenants (`GET /v1/usage`) and admins (per tenant, with top-up and
//! reset of the current month), and the organisation's upstream standing.

use crate::domain::Tenant;
use crate::http::admin::answers::{NoSuchTenant, TenantPath};
use crate::http::admin::tenants::PathTenant;
use crate::http::error::ApiError;
use crate::http::extract::{AdminCaller, TenantCaller};
use crate::http::state::AppState;
use crate::services::quota::TopUp;
use crate::services::tenancy::tenants;
use crate::store::audit::{Actor, Audit, AuditedTx};
use actix_web::{web, HttpResponse};
use uuid::Uuid;

/// A tenant's usage this month, as every usage route answers it.
async fn usage_answer(state: &AppState, tenant: &Tenant) -> Result<HttpResponse, ApiError> {
    let report = state.quotas.usage_report(tenant).await?;
    Ok(HttpResponse::Ok().json(report))
}

/// This month's usage of the calling tenant: total and remaining, per day, per endpoint, and
/// refusals by reason.
#[utoipa::path(get, path = "/v1/usage", tag = "Usage", operation_id = "getUsage",
    responses((status = 200, description = "This month's usage", body = UsageReport),
        (status = 403, description = "The key lacks `usage:read`, or the tenant is suspended", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody)))]
pub async fn tenant_usage(
    caller: TenantCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tenant = &caller.tenant;
    usage_answer(&state, tenant).await
}

/// A tenant's usage this month.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant_id}/usage", tag = "Admin",
    operation_id = "adminGetTenantUsage", params(TenantPath),
    responses((status = 200, description = "This month's usage", body = UsageReport), NoSuchTenant))]
pub async fn admin_tenant_usage(named: PathTenant) -> Result<HttpResponse, ApiError> {
    usage_answer(&named.state, &named.tenant).await
}

/// Grants a tenant extra requests for the current month (audit-logged).
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant_id}/usage/top-up", tag = "Admin",
    operation_id = "adminTopUpTenant", params(TenantPath), request_body = TopUp,
    responses((status = 200, description = "The usage after the top-up", body = UsageReport),
        (status = 400, description = "requests is not a positive number", body = ErrorBody),
        NoSuchTenant))]
pub async fn top_up(
    actor: Actor,
    state: web::Data<AppState>,
    path: web::Path<TenantPath>,
    body: web::Json<TopUp>,
) -> Result<HttpResponse, ApiError> {
    correct_month(
        &state,
        &actor,
        path.tenant_id,
        Correction::TopUp(body.requests),
    )
    .await
}

/// Gives a tenant its whole monthly quota back for the rest of the month (audit-logged).
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant_id}/usage/reset", tag = "Admin",
    operation_id = "adminResetTenantMonth", params(TenantPath),
    responses((status = 200, description = "The usage after the reset", body = UsageReport),
        NoSuchTenant))]
pub async fn reset_month(
    actor: Actor,
    state: web::Data<AppState>,
    path: web::Path<TenantPath>,
) -> Result<HttpResponse, ApiError> {
    correct_month(&state, &actor, path.tenant_id, Correction::Reset).await
}

/// An admin's correction to a tenant's current month.
enum Correction {
    TopUp(i64),
    Reset,
}

/// Applies a correction and its audit entry in one transaction, then answers the usage after.
async fn correct_month(
    state: &AppState,
    actor: &Actor,
    tenant_id: Uuid,
    correction: Correction,
) -> Result<HttpResponse, ApiError> {
    let tenant = tenants::find(&state.db, tenant_id).await?;
    let mut tx = AuditedTx::begin(&state.db, actor).await?;
    let audit = match correction {
        Correction::TopUp(requests) => {
            state.quotas.top_up(tx.conn(), tenant.id, requests).await?;
            let details = serde_json::json!({ "requests": requests });
            Audit::new("quota.top_up", "tenant", tenant.id, details)
        }
        Correction::Reset => {
            state.quotas.reset_month(tx.conn(), tenant.id).await?;
            Audit::new("quota.reset", "tenant", tenant.id, serde_json::json!({}))
        }
    };
    tx.commit(audit).await?;
    usage_answer(state, &tenant).await
}

/// The organisation's standing on its upstream plan: budget, use this month, and what the
/// upstream itself last reported.
#[utoipa::path(get, path = "/admin/v1/upstream", tag = "Admin", operation_id = "adminGetUpstream",
    responses((status = 200, description = "The organisation's upstream standing", body = UpstreamReport)))]
pub async fn upstream_standing(
    _admin: AdminCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.quotas.upstream_report(&state.db).await?))
}
