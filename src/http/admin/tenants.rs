//! The admin API's tenants: who the gateway serves, on which plan, with which limits
//! (`services::tenancy::tenants` does the work).

use crate::http::admin::answers::{
    InvalidQuery, InvalidTenant, MalformedBody, NameTaken, NoSuchTenant, TenantPath,
};
use crate::http::admin::PageQuery;
use crate::http::error::ApiError;
use crate::http::extract::AdminCaller;
use crate::http::state::AppState;
use crate::services::tenancy::tenants;
use crate::store::audit::Actor;
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use futures_util::future::LocalBoxFuture;

/// The tenant as the admin API shows it: the domain's one shape.
pub use crate::domain::tenant::Tenant as TenantView;
// The schemas the admin API's document lists.
pub use crate::domain::pacing::{Policy, TenantPacing};
pub use crate::domain::tenant::{Plan, Quota, TenantStatus};
pub use crate::services::pacing::TenantPacingPatch;
pub use crate::services::tenancy::tenants::{NewTenant, TenantDeleted, TenantPatch};

/// The tenant a `/admin/v1/tenants/{tenant_id}...` route names, as a handler argument: the
/// admin's token is checked first (as by `AdminCaller`), then the tenant is loaded; one that
/// does not exist is 404 in the error shape (`NoSuchTenant`) before the handler runs.
pub struct PathTenant {
    pub tenant: TenantView,
    pub state: web::Data<AppState>,
}

impl FromRequest for PathTenant {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        // Extracted together, in the order the handlers took them: the admin, the state, the path.
        let parts =
            <(AdminCaller, web::Data<AppState>, web::Path<TenantPath>)>::from_request(req, payload);
        Box::pin(async move {
            let (_admin, state, path) = parts.await?;
            let tenant = tenants::find(&state.db, path.tenant_id)
                .await
                .map_err(ApiError::from)?;
            Ok(Self { tenant, state })
        })
    }
}

/// Create a tenant
#[utoipa::path(post, path = "/admin/v1/tenants", tag = "Admin", operation_id = "adminCreateTenant",
    request_body = NewTenant,
    responses((status = 201, description = "The new tenant", body = TenantView), MalformedBody,
        NameTaken, InvalidTenant))]
pub async fn create_tenant(
    actor: Actor,
    state: web::Data<AppState>,
    body: web::Json<NewTenant>,
) -> Result<HttpResponse, ApiError> {
    let tenant = tenants::create(&state.db, &actor, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(tenant))
}

/// List tenants by name, paged
#[utoipa::path(get, path = "/admin/v1/tenants", tag = "Admin", operation_id = "adminListTenants",
    params(PageQuery),
    responses((status = 200, description = "One page of tenants", body = TenantPage), InvalidQuery))]
pub async fn list_tenants(
    _admin: AdminCaller,
    state: web::Data<AppState>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let found = crate::store::tenants::list(&state.db, page.window()).await?;
    Ok(page.answer(found))
}

/// Get a tenant
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant_id}", tag = "Admin",
    operation_id = "adminGetTenant", params(TenantPath),
    responses((status = 200, description = "The tenant", body = TenantView), NoSuchTenant))]
pub async fn get_tenant(named: PathTenant) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(named.tenant))
}

/// Rename, re-plan, re-quota, re-pace, suspend or reactivate a tenant; takes effect on every replica within a second
#[utoipa::path(patch, path = "/admin/v1/tenants/{tenant_id}", tag = "Admin",
    operation_id = "adminUpdateTenant", params(TenantPath), request_body = TenantPatch,
    responses((status = 200, description = "The updated tenant", body = TenantView), MalformedBody,
        NoSuchTenant, NameTaken, InvalidTenant))]
pub async fn update_tenant(
    actor: Actor,
    state: web::Data<AppState>,
    path: web::Path<TenantPath>,
    body: web::Json<TenantPatch>,
) -> Result<HttpResponse, ApiError> {
    let patch = body.into_inner();
    let tenant = tenants::update(&state.db, &state.auth, &actor, path.tenant_id, patch).await?;
    // A new pacing applies to this replica's very next send.
    state.pacing.policies.tenant_changed(tenant.id).await;
    Ok(HttpResponse::Ok().json(tenant))
}

/// Get a tenant's send pacing
///
/// The default of its sessions without a policy of their own, and the ceiling none of them may
/// go past; set both with `PATCH /admin/v1/tenants/{tenant_id}` (`pacing`).
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant_id}/pacing", tag = "Admin",
    operation_id = "adminGetTenantPacing", params(TenantPath),
    responses((status = 200, description = "The tenant's pacing", body = TenantPacing), NoSuchTenant))]
pub async fn get_tenant_pacing(named: PathTenant) -> Result<HttpResponse, ApiError> {
    // Deleted since the extractor loaded it: 404 all the same.
    let id = named.tenant.id;
    let pacing = crate::store::pacing::tenant_pacing(&named.state.db, id)
        .await?
        .ok_or(crate::services::tenancy::TenancyError::NoTenant(id))?;
    Ok(HttpResponse::Ok().json(pacing))
}

/// Delete a tenant: its keys stop working at once, its data is deleted and its upstream sessions are deleted
#[utoipa::path(delete, path = "/admin/v1/tenants/{tenant_id}", tag = "Admin",
    operation_id = "adminDeleteTenant", params(TenantPath),
    responses((status = 200, description = "Deleted", body = TenantDeleted), NoSuchTenant))]
pub async fn delete_tenant(
    actor: Actor,
    state: web::Data<AppState>,
    path: web::Path<TenantPath>,
) -> Result<HttpResponse, ApiError> {
    let id = path.tenant_id;
    let deleted = tenants::delete(
        &state.db,
        crate::services::upstream::Gateway::new(&state.upstream, &state.quotas),
        &actor,
        id,
    )
    .await?;
    Ok(HttpResponse::Ok().json(deleted))
}
