//! `GET /v1/me`: a tenant's own view of its key, limits and this month's usage.

use crate::domain::{Mode, Plan, Quota};
use crate::http::error::ApiError;
use crate::http::extract::TenantCaller;
use crate::http::state::AppState;
use crate::services::quota::UsageReport;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

#[derive(Serialize, utoipa::ToSchema)]
pub struct MeTenant {
    pub id: Uuid,
    pub name: String,
    pub plan: Plan,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MeKey {
    pub id: String,
    pub name: String,
    /// `test`: served by the built-in simulator, spending none of the month.
    pub mode: Mode,
    pub scopes: Vec<String>,
    /// The sessions the key is limited to; null: all of the tenant's.
    pub sessions: Option<Vec<String>>,
    /// When the key stops working (expiry, or the end of a rotation's grace).
    pub valid_until: Option<DateTime<Utc>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MeResponse {
    pub tenant: MeTenant,
    pub key: MeKey,
    pub quota: Quota,
    /// This month's usage (the same report as the usage endpoint).
    #[schema(value_type = Object)]
    pub usage: UsageReport,
}

/// The calling key, its tenant, the tenant's quota and this month's usage (no scope needed)
#[utoipa::path(get, path = "/v1/me", tag = "Usage", operation_id = "getMe",
    responses((status = 200, description = "Who you are and what you have used", body = MeResponse), (status = 403, description = "The tenant is suspended", body = ErrorBody)))]
pub async fn me(
    caller: TenantCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tenant = &caller.tenant;
    let usage = state.quotas.usage_report(tenant).await?;
    Ok(HttpResponse::Ok().json(MeResponse {
        tenant: MeTenant {
            id: tenant.id,
            name: tenant.name.clone(),
            plan: tenant.plan,
        },
        key: MeKey {
            id: caller.key.id.clone(),
            name: caller.key.name.clone(),
            mode: caller.key.mode,
            scopes: caller.key.scopes.names(),
            sessions: caller.key.sessions.clone(),
            valid_until: caller.key.valid_until,
        },
        quota: tenant.quota.clone(),
        usage,
    }))
}
