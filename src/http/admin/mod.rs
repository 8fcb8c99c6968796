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

use crate::store::{Page, Window};
use actix_web::HttpResponse;
use audit::AuditEntry;
use keys::KeyView;
use serde::{Deserialize, Serialize};
use tenants::TenantView;

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
    TenantPage,
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
    KeyPage,
    keys::RotateRequest,
    keys::KeyRotated,
    Paging,
    audit::AuditEntry,
    AuditPage,
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
    fn page(&self) -> u32 {
        self.page.unwrap_or(1).max(1)
    }

    fn per_page(&self) -> u32 {
        self.per_page.unwrap_or(50).clamp(1, 200)
    }

    /// The rows the page asked for.
    pub fn window(&self) -> Window {
        let per_page = i64::from(self.per_page());
        Window {
            limit: per_page,
            offset: (i64::from(self.page()) - 1) * per_page,
        }
    }

    /// The answer of every admin list: the page's items and where they stand in the listing.
    pub fn answer<T: Serialize>(&self, found: Page<T>) -> HttpResponse {
        HttpResponse::Ok().json(Listed {
            items: found.items,
            paging: Paging {
                page: self.page(),
                per_page: self.per_page(),
                total: found.total,
            },
        })
    }
}

// One page of a list; each list's schema is an alias naming its items (a doc comment here
// would become every alias's description).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[aliases(
    TenantPage = Listed<TenantView>,
    KeyPage = Listed<KeyView>,
    AuditPage = Listed<AuditEntry>
)]
pub struct Listed<T> {
    pub items: Vec<T>,
    #[serde(flatten)]
    #[schema(inline)]
    pub paging: Paging,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Paging {
    pub page: u32,
    pub per_page: u32,
    pub total: i64,
}
