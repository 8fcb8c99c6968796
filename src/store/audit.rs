//! The audit log: every admin action, who did it, to what, when, from where, in which
//! request. An admin change and its record commit together (`AuditedTx`), so neither is
//! ever without the other.

use crate::db::Db;
use crate::store::{Page, StoreError, Window};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, Postgres, QueryBuilder, Transaction};
use uuid::Uuid;

/// Who acted and from where.
pub struct Actor {
    pub admin_id: Option<Uuid>,
    pub username: String,
    pub client_addr: Option<String>,
    pub request_id: Option<String>,
}

impl Actor {
    /// The command line acting directly on the database.
    pub fn cli() -> Self {
        Self::named("cli")
    }

    /// The gateway itself (a webhook disabled for failing).
    pub fn gateway() -> Self {
        Self::named("gateway")
    }

    /// A tenant acting on its own resources (enabling its webhook): `tenant:<id>`.
    pub fn tenant(id: Uuid) -> Self {
        Self::named(&format!("tenant:{id}"))
    }

    fn named(username: &str) -> Self {
        Self {
            admin_id: None,
            username: username.to_owned(),
            client_addr: None,
            request_id: None,
        }
    }
}

/// What an admin did, to what.
pub struct Audit {
    pub action: &'static str,
    pub target_type: &'static str,
    pub target_id: String,
    pub details: serde_json::Value,
}

impl Audit {
    pub fn new(
        action: &'static str,
        target_type: &'static str,
        target_id: impl ToString,
        details: serde_json::Value,
    ) -> Self {
        Self {
            action,
            target_type,
            target_id: target_id.to_string(),
            details,
        }
    }
}

/// A notice to every replica that something it may have cached changed; sent on commit.
pub trait Notice {
    fn channel(&self) -> &'static str;
    fn payload(&self) -> String;
}

pub async fn record<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    actor: &Actor,
    audit: &Audit,
) -> Result<(), StoreError> {
    sqlx::query!(
        "INSERT INTO audit_log (admin_id, admin_username, action, target_type, target_id, client_addr, request_id, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        actor.admin_id,
        actor.username,
        audit.action,
        audit.target_type,
        audit.target_id,
        actor.client_addr,
        actor.request_id,
        audit.details,
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// A transaction that ends with its audit record: the change, the record and any notice
/// commit together or not at all.
pub struct AuditedTx<'a> {
    tx: Transaction<'static, Postgres>,
    actor: &'a Actor,
}

impl<'a> AuditedTx<'a> {
    pub async fn begin(db: &Db, actor: &'a Actor) -> Result<Self, StoreError> {
        Ok(Self {
            tx: db.begin().await?,
            actor,
        })
    }

    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    pub async fn commit(mut self, audit: Audit) -> Result<(), StoreError> {
        record(&mut *self.tx, self.actor, &audit).await?;
        self.tx.commit().await?;
        Ok(())
    }

    /// Commits with a notice, which PostgreSQL delivers only if the commit succeeds.
    pub async fn commit_announcing(
        mut self,
        audit: Audit,
        notice: &impl Notice,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            "SELECT pg_notify($1, $2)",
            notice.channel(),
            notice.payload()
        )
        .execute(&mut *self.tx)
        .await?;
        self.commit(audit).await
    }
}

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub admin_id: Option<Uuid>,
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

/// Which entries a listing shows; every field given narrows it.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
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

// The WHERE clause depends on which filters are given, so these statements are built at run
// time.
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

/// One page of the filtered log, newest first, and how many entries match in all.
pub async fn list(
    db: &Db,
    filter: &AuditFilter,
    window: Window,
) -> Result<Page<AuditEntry>, StoreError> {
    let mut count = QueryBuilder::new("SELECT count(*) FROM audit_log");
    push_filter(&mut count, filter);
    let total: i64 = count.build_query_scalar().fetch_one(db).await?;
    let mut q = QueryBuilder::new(
        "SELECT id, at, admin_id, admin_username, action, target_type, target_id, client_addr, request_id, details FROM audit_log",
    );
    push_filter(&mut q, filter);
    q.push(" ORDER BY at DESC, id DESC LIMIT ")
        .push_bind(window.limit)
        .push(" OFFSET ")
        .push_bind(window.offset);
    let items = q.build_query_as().fetch_all(db).await?;
    Ok(Page { items, total })
}
