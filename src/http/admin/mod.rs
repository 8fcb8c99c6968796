//! Tenancy administration: admins, tenants, their keys and the audit log under `/admin/v1`,
//! and the tenant's own view of itself at `/v1/me`.
//!
//! Every admin handler takes an `AdminCaller`, so none is reachable without a valid token,
//! and writes what it did to the audit log.

pub mod admins;
pub mod audit;
pub mod keys;
pub mod sessions;
pub mod tenants;
pub mod usage;

use actix_web::web;
use serde::{Deserialize, Serialize};

/// Registers `/admin/v1/...` and `/v1/me`. Configure before `upstream::routes`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/v1/login").route(web::post().to(admins::login)))
        .service(
            web::resource("/admin/v1/admins")
                .route(web::get().to(admins::list_admins))
                .route(web::post().to(admins::create_admin)),
        )
        .service(
            web::resource("/admin/v1/admins/me/password")
                .route(web::put().to(admins::change_own_password)),
        )
        .service(
            web::resource("/admin/v1/admins/{admin_id}")
                .route(web::delete().to(admins::delete_admin)),
        )
        .service(
            web::resource("/admin/v1/tenants")
                .route(web::get().to(tenants::list_tenants))
                .route(web::post().to(tenants::create_tenant)),
        )
        .service(
            web::resource("/admin/v1/tenants/{tenant_id}")
                .route(web::get().to(tenants::get_tenant))
                .route(web::patch().to(tenants::update_tenant))
                .route(web::delete().to(tenants::delete_tenant)),
        )
        .service(
            web::resource("/admin/v1/tenants/{tenant_id}/keys")
                .route(web::get().to(keys::list_keys))
                .route(web::post().to(keys::create_key)),
        )
        .service(
            web::resource("/admin/v1/tenants/{tenant_id}/keys/{key_id}")
                .route(web::delete().to(keys::revoke_key)),
        )
        .service(
            web::resource("/admin/v1/tenants/{tenant_id}/keys/{key_id}/rotate")
                .route(web::post().to(keys::rotate_key)),
        )
        .service(web::resource("/admin/v1/audit").route(web::get().to(audit::list_audit)))
        .service(
            web::resource("/admin/v1/tenants/{tenant_id}/usage")
                .route(web::get().to(usage::admin_tenant_usage)),
        )
        .service(
            web::resource("/admin/v1/tenants/{tenant_id}/usage/top-up")
                .route(web::post().to(usage::top_up)),
        )
        .service(
            web::resource("/admin/v1/tenants/{tenant_id}/usage/reset")
                .route(web::post().to(usage::reset_month)),
        )
        .service(web::resource("/admin/v1/upstream").route(web::get().to(usage::upstream_standing)))
        .service(web::resource("/v1/me").route(web::get().to(crate::http::tenant::me::me)))
        .service(web::resource("/v1/usage").route(web::get().to(usage::tenant_usage)));
}

/// The OpenAPI description of everything here, for the document helper to merge.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        admins::login,
        admins::list_admins,
        admins::create_admin,
        admins::delete_admin,
        admins::change_own_password,
        tenants::create_tenant,
        tenants::list_tenants,
        tenants::get_tenant,
        tenants::update_tenant,
        tenants::delete_tenant,
        keys::create_key,
        keys::list_keys,
        keys::revoke_key,
        keys::rotate_key,
        audit::list_audit,
        crate::http::tenant::me::me,
        usage::tenant_usage,
        usage::admin_tenant_usage,
        usage::top_up,
        usage::reset_month,
        usage::upstream_standing,
    ),
    components(schemas(
        crate::http::error::ErrorBody,
        admins::LoginRequest,
        admins::TokenResponse,
        admins::AdminView,
        admins::NewAdmin,
        admins::PasswordChange,
        tenants::Plan,
        tenants::TenantStatus,
        tenants::Quota,
        tenants::NewTenant,
        tenants::TenantPatch,
        tenants::TenantView,
        tenants::TenantPage,
        tenants::TenantDeleted,
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
        crate::services::quota::RefusalCount,
        crate::services::quota::TopUp,
        crate::services::quota::UpstreamReport,
    ))
)]
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
