//! The audit log: every admin action, who did it, to what, when, from where, in which request.

use crate::db::Db;
use crate::http::admin::{PageQuery, Paging};
use crate::http::error::ApiError;
use crate::http::extract::AdminCaller;
use crate::telemetry::RequestId;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, QueryBuilder};

/// Who acted and from where, taken from the request.
pub struct Actor {
    pub admin_id: Option<uuid::Uuid>,
    pub username: String,
    pub client_addr: Option<String>,
    pub request_id: Option<String>,
}

impl Actor {
    pub fn of(admin: &AdminCaller, req: &HttpRequest) -> Self {
        Self {
            admin_id: Some(admin.id),
            username: admin.username.clone(),
            client_addr: client_addr(req),
            request_id: req.extensions().get::<RequestId>().map(|r| r.0.clone()),
        }
    }

    /// The command line acting directly on the database.
    pub fn cli() -> Self {
        Self {
            admin_id: None,
            username: "cli".to_owned(),
            client_addr: None,
            request_id: None,
        }
    }
}

/// The client's address as the failure limits count it (`crate::http::extract::client_addr`): the peer,
/// or the forwarded-for hop a trusted proxy reports.
pub fn client_addr(req: &HttpRequest) -> Option<String> {
    crate::http::extract::client_addr(req).map(|a| a.to_string())
}

pub async fn record<'e, E: sqlx::PgExecutor<'e>>(
    executor: E,
    actor: &Actor,
    action: &str,
    target_type: &str,
    target_id: &str,
    details: serde_json::Value,
) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO audit_log (admin_id, admin_username, action, target_type, target_id, client_addr, request_id, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(actor.admin_id)
    .bind(&actor.username)
    .bind(action)
    .bind(target_type)
    .bind(target_id)
    .bind(&actor.client_addr)
    .bind(&actor.request_id)
    .bind(details)
    .execute(executor)
    .await?;
    Ok(())
}

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub admin_id: Option<uuid::Uuid>,
    pub admin_username: String,
    /// e.g. `tenant.create`, `key.revoke`, `admin.login`.
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub client_addr: Option<String>,
    pub request_id: Option<String>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    #[serde(flatten)]
    pub paging: Paging,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AuditFilter {
    /// Only actions of this admin (username).
    pub admin: Option<String>,
    /// Only this action, e.g. `key.revoke`.
    pub action: Option<String>,
    /// Only actions on this target (tenant id, key id, admin id).
    pub target_id: Option<String>,
    /// Only actions at or after this instant (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Only actions before this instant (RFC 3339).
    pub until: Option<DateTime<Utc>>,
}

fn push_filter(q: &mut QueryBuilder<'_, Postgres>, f: &AuditFilter) {
    q.push(" WHERE true");
    if let Some(v) = &f.admin {
        q.push(" AND admin_username = ").push_bind(v.clone());
    }
    if let Some(v) = &f.action {
        q.push(" AND action = ").push_bind(v.clone());
    }
    if let Some(v) = &f.target_id {
        q.push(" AND target_id = ").push_bind(v.clone());
    }
    if let Some(v) = f.since {
        q.push(" AND at >= ").push_bind(v);
    }
    if let Some(v) = f.until {
        q.push(" AND at < ").push_bind(v);
    }
}

/// List audit log entries, newest first, paged and filtered
#[utoipa::path(
    get,
    path = "/admin/v1/audit",
    tag = "Admin",
    operation_id = "adminListAudit",
    params(PageQuery, AuditFilter),
    responses(
        (status = 200, description = "One page of the audit log", body = AuditPage),
        (status = 400, description = "Invalid query", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
    ),
    security(("admin_jwt" = []))
)]
pub async fn list_audit(
    _admin: AdminCaller,
    pool: web::Data<Db>,
    page: web::Query<PageQuery>,
    filter: web::Query<AuditFilter>,
) -> Result<HttpResponse, ApiError> {
    let (limit, offset, page, per_page) = page.limit_offset();
    let mut count = QueryBuilder::new("SELECT count(*) FROM audit_log");
    push_filter(&mut count, &filter);
    let total: i64 = count.build_query_scalar().fetch_one(pool.get_ref()).await?;
    let mut q = QueryBuilder::new(
        "SELECT id, at, admin_id, admin_username, action, target_type, target_id, client_addr, request_id, details FROM audit_log",
    );
    push_filter(&mut q, &filter);
    q.push(" ORDER BY at DESC, id DESC LIMIT ")
        .push_bind(limit)
        .push(" OFFSET ")
        .push_bind(offset);
    let items: Vec<AuditEntry> = q.build_query_as().fetch_all(pool.get_ref()).await?;
    Ok(HttpResponse::Ok().json(AuditPage {
        items,
        paging: Paging {
            page,
            per_page,
            total,
        },
    }))
}
