//! The admin API's audit log: every admin action, who did it, to what, when, from where, in
//! which request (written by `store::audit`).

use crate::http::admin::answers::InvalidQuery;
use crate::http::admin::PageQuery;
use crate::http::error::ApiError;
use crate::http::extract::AdminCaller;
use crate::http::state::AppState;
use crate::store::audit::Actor;
use crate::telemetry::RequestId;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};

pub use crate::store::audit::{AuditEntry, AuditFilter};

impl Actor {
    /// The admin calling, from where, in which request.
    pub fn of(admin: &AdminCaller, req: &HttpRequest) -> Self {
        Self {
            admin_id: Some(admin.id),
            username: admin.username.clone(),
            client_addr: client_addr(req),
            request_id: req.extensions().get::<RequestId>().map(|r| r.0.clone()),
        }
    }
}

/// The client's address as the failure limits count it (`crate::http::extract::client_addr`): the peer,
/// or the forwarded-for hop a trusted proxy reports.
pub fn client_addr(req: &HttpRequest) -> Option<String> {
    crate::http::extract::client_addr(req).map(|a| a.to_string())
}

/// List audit log entries, newest first, paged and filtered
#[utoipa::path(get, path = "/admin/v1/audit", tag = "Admin", operation_id = "adminListAudit",
    params(PageQuery, AuditFilter),
    responses((status = 200, description = "One page of the audit log", body = AuditPage), InvalidQuery))]
pub async fn list_audit(
    _admin: AdminCaller,
    state: web::Data<AppState>,
    page: web::Query<PageQuery>,
    filter: web::Query<AuditFilter>,
) -> Result<HttpResponse, ApiError> {
    let found = crate::store::audit::list(&state.db, &filter, page.window()).await?;
    Ok(page.answer(found))
}
