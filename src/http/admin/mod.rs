//! Tenancy administration: admins, tenants, their keys and the audit log under `/admin/v1`,
//! and the tenant's own view of itself at `/v1/me`.
//!
//! Every admin handler takes an `AdminCaller`, so none is reachable without a valid token,
//! and writes what it did to the audit log.

pub mod admins;
pub mod answers;
pub mod audit;
pub mod keys;
pub mod sessions;
pub mod tenants;
pub mod usage;

use serde::{Deserialize, Serialize};

/// The schemas the admin handlers' annotations name (utoipa 4 does not collect them from the
/// paths); the paths themselves come from the route table (`crate::http::routes::local`).
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    crate::http::error::ErrorBody,
    admins::LoginRequest,
    admins::TokenResponse,
    admins::AdminView,
    admins::NewAdmin,
    admins::PasswordChange,
    tenants::Plan,
    tenants::TenantStatus,
    crate::domain::Mode,
    tenants::Quota,
    tenants::NewTenant,
    tenants::TenantPatch,
    tenants::TenantView,
    tenants::TenantPage,
    tenants::TenantDeleted,
    tenants::Policy,
    tenants::TenantPacing,
    tenants::TenantPacingPatch,
    crate::services::pacing::SessionPacingView,
    crate::store::pacing::LineStanding,
    crate::services::quota::SessionPacing,
    keys::NewKeyRequest,
    keys::KeyCreated,
    keys::KeyView,
    keys::KeyPage,
    keys::RotateRequest,
    keys::KeyRotated,
    Paging,
    audit::AuditEntry,
    audit::AuditPage,
    crate::http::tenant::me::MeResponse,
    crate::http::tenant::me::MeTenant,
    crate::http::tenant::me::MeKey,
    crate::services::quota::UsageReport,
    crate::services::quota::DayUsage,
    crate::services::quota::EndpointUsage,
    crate::services::quota::TestUsage,
    crate::services::quota::RefusalCount,
    crate::services::quota::TopUp,
    crate::services::quota::UpstreamReport,
    crate::services::quota::QueueReport,
)))]
pub struct TenancyApi;

/// Paging for every list: `?page=1&per_page=50` (at most 200 per page).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PageQuery {
    /// 1-based page number.
    pub page: Option<u32>,
    /// Items per page, 1 to 200 (default 50).
    pub per_page: Option<u32>,
}

impl PageQuery {
    pub fn limit_offset(&self) -> (i64, i64, u32, u32) {
        let page = self.page.unwrap_or(1).max(1);
        let per_page = self.per_page.unwrap_or(50).clamp(1, 200);
        (
            per_page as i64,
            (page as i64 - 1) * per_page as i64,
            page,
            per_page,
        )
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Paging {
    pub page: u32,
    pub per_page: u32,
    pub total: i64,
}
