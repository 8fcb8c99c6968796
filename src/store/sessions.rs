//! `sessions`: which tenant owns which upstream session, under which name. The only code that
//! writes the table.

use crate::db::Db;
use crate::domain::mode::TEST_MAX_SESSIONS;
use crate::domain::{Mode, SessionName, UpstreamSession};
use crate::store::{ResultExt, StoreError};
use uuid::Uuid;

pub const NAME_TAKEN: &str = "sessions_tenant_name_key";
pub const UPSTREAM_OWNED: &str = "sessions_upstream_name_key";
pub const TENANT_MISSING: &str = "sessions_tenant_id_fkey";

#[derive(Debug, Clone)]
pub struct OwnedSession {
    pub name: String,
    pub upstream_name: String,
}

/// An owned session with its tenant, as admins see it.
#[derive(Debug, Clone)]
pub struct TenantSession {
    pub tenant_id: Uuid,
    pub tenant_name: String,
    pub name: String,
    pub upstream_name: String,
}

/// Why a new session was not recorded, when no rule of the table refused it.
#[derive(Debug, PartialEq, Eq)]
pub enum NotRecorded {
    /// The tenant's row is gone.
    NoTenant,
    /// The tenant owns its `max_sessions` already.
    TenantFull { max: i32 },
    /// Every session the organisation's plan allows is owned.
    OrganisationFull { max: u32 },
}

pub async fn upstream_name(
    db: &Db,
    tenant: Uuid,
    mode: Mode,
    name: &SessionName,
) -> Result<Option<UpstreamSession>, StoreError> {
    let found = sqlx::query_scalar!(
        "SELECT upstream_name FROM sessions WHERE tenant_id = $1 AND mode = $2 AND name = $3",
        tenant,
        mode.as_str(),
        name.as_str(),
    )
    .fetch_optional(db)
    .await?;
    Ok(found.map(UpstreamSession::from_db))
}

/// Records a new session within the tenant's `max_sessions` and the organisation's plan
/// (`org_max`), atomically: the tenant's row (and, with a plan limit, a global advisory lock)
/// is held so concurrent creations on any replica are counted one by one. A test session
/// counts against neither, only against [`TEST_MAX_SESSIONS`] of its own kind.
pub async fn create(
    db: &Db,
    tenant: Uuid,
    mode: Mode,
    name: &SessionName,
    upstream: &UpstreamSession,
    org_max: Option<u32>,
) -> Result<Result<(), NotRecorded>, StoreError> {
    let mut tx = db.begin().await?;
    let Some(row) = sqlx::query!(
        "SELECT max_sessions FROM tenants WHERE id = $1 FOR UPDATE",
        tenant
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(Err(NotRecorded::NoTenant));
    };
    let (max_sessions, org_max) = match mode {
        Mode::Live => (row.max_sessions, org_max),
        Mode::Test => (Some(TEST_MAX_SESSIONS), None),
    };
    if let Some(max) = max_sessions {
        let owned = sqlx::query_scalar!(
            r#"SELECT count(*) AS "owned!" FROM sessions WHERE tenant_id = $1 AND mode = $2"#,
            tenant,
            mode.as_str(),
        )
        .fetch_one(&mut *tx)
        .await?;
        if owned >= i64::from(max) {
            return Ok(Err(NotRecorded::TenantFull { max }));
        }
    }
    if let Some(max) = org_max {
        // Always after the tenant's row lock: one order, no deadlock.
        sqlx::query!("SELECT pg_advisory_xact_lock(hashtext('wagw.sessions'))")
            .execute(&mut *tx)
            .await?;
        let all =
            sqlx::query_scalar!(r#"SELECT count(*) AS "all!" FROM sessions WHERE mode = 'live'"#)
                .fetch_one(&mut *tx)
                .await?;
        if all >= i64::from(max) {
            return Ok(Err(NotRecorded::OrganisationFull { max }));
        }
    }
    insert(&mut *tx, tenant, mode, name, upstream)
        .await
        .on_constraint(NAME_TAKEN, || format!("session `{name}` already exists"))?;
    tx.commit().await?;
    Ok(Ok(()))
}

/// Records an upstream session that already exists as the tenant's (a live one: only the
/// hosted API has sessions to adopt). Refusals are the table's rules (`NAME_TAKEN`,
/// `UPSTREAM_OWNED`, `TENANT_MISSING`), as `StoreError::Conflict`.
pub async fn adopt(
    db: &Db,
    tenant: Uuid,
    name: &SessionName,
    upstream: &UpstreamSession,
) -> Result<(), StoreError> {
    insert(db, tenant, Mode::Live, name, upstream)
        .await
        .on_constraint(NAME_TAKEN, || {
            format!("the tenant already has a session `{name}`")
        })
        .on_constraint(UPSTREAM_OWNED, || {
            format!("upstream session `{}` is already owned", upstream.as_str())
        })
        .on_constraint(TENANT_MISSING, || "no such tenant".to_owned())
}

async fn insert<'e>(
    conn: impl sqlx::PgExecutor<'e>,
    tenant: Uuid,
    mode: Mode,
    name: &SessionName,
    upstream: &UpstreamSession,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO sessions (id, tenant_id, mode, name, upstream_name) VALUES ($1, $2, $3, $4, $5)",
        Uuid::now_v7(),
        tenant,
        mode.as_str(),
        name.as_str(),
        upstream.as_str(),
    )
    .execute(conn)
    .await
    .map(drop)
}

/// Forgets the tenant's session and, with it, its relayed subscriptions: a new session of the
/// same name starts clean.
pub async fn forget(
    db: &Db,
    tenant: Uuid,
    mode: Mode,
    name: &SessionName,
) -> Result<(), StoreError> {
    sqlx::query!(
        "WITH gone AS (DELETE FROM sessions WHERE tenant_id = $1 AND mode = $2 AND name = $3 RETURNING 1)
         DELETE FROM webhook_subscriptions
          WHERE tenant_id = $1 AND mode = $2 AND session_name = $3 AND EXISTS (SELECT 1 FROM gone)",
        tenant,
        mode.as_str(),
        name.as_str(),
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Forgets whoever owned the upstream session (and its subscriptions); the owner and its
/// name for it.
pub async fn forget_upstream(
    db: &Db,
    upstream: &str,
) -> Result<Option<(Uuid, String)>, StoreError> {
    let owner = sqlx::query!(
        "WITH gone AS (DELETE FROM sessions WHERE upstream_name = $1 RETURNING tenant_id, mode, name),
              subscriptions AS (
                DELETE FROM webhook_subscriptions w USING gone
                 WHERE w.tenant_id = gone.tenant_id AND w.mode = gone.mode
                   AND w.session_name = gone.name)
         SELECT tenant_id AS \"tenant_id!\", name AS \"name!\" FROM gone",
        upstream,
    )
    .fetch_optional(db)
    .await?;
    Ok(owner.map(|o| (o.tenant_id, o.name)))
}

/// Every owned live session, with its tenant (test sessions are on no upstream an admin
/// manages).
pub async fn list_all(db: &Db) -> Result<Vec<TenantSession>, StoreError> {
    Ok(sqlx::query_as!(
        TenantSession,
        "SELECT s.tenant_id, t.name AS tenant_name, s.name, s.upstream_name
           FROM sessions s JOIN tenants t ON t.id = s.tenant_id
          WHERE s.mode = 'live'
          ORDER BY t.name, s.name",
    )
    .fetch_all(db)
    .await?)
}

/// Every session the tenant owns in `mode`.
pub async fn list(db: &Db, tenant: Uuid, mode: Mode) -> Result<Vec<OwnedSession>, sqlx::Error> {
    sqlx::query_as!(
        OwnedSession,
        "SELECT name, upstream_name FROM sessions WHERE tenant_id = $1 AND mode = $2 ORDER BY name",
        tenant,
        mode.as_str(),
    )
    .fetch_all(db)
    .await
}

/// The name of a tenant, for an admin's answer.
pub async fn tenant_name(db: &Db, tenant: Uuid) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar!("SELECT name FROM tenants WHERE id = $1", tenant)
            .fetch_optional(db)
            .await?,
    )
}
