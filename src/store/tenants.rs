//! The `tenants` table, and `upstream_session_deletions`: the upstream sessions of deleted
//! tenants that are still to be deleted on the upstream.

use crate::domain::tenant::{Plan, Quota, Tenant, TenantStatus};
use crate::domain::Mode;
use crate::store::{Page, ResultExt, StoreError, Window};
use chrono::{DateTime, Utc};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::{PgConnection, PgExecutor, Postgres};
use uuid::Uuid;

/// Plan, status and a key's or session's mode are text columns (with CHECK constraints) holding the enums' names.
macro_rules! text_enum {
    ($ty:ty) => {
        impl sqlx::Type<Postgres> for $ty {
            fn type_info() -> PgTypeInfo {
                <str as sqlx::Type<Postgres>>::type_info()
            }
            fn compatible(ty: &PgTypeInfo) -> bool {
                <str as sqlx::Type<Postgres>>::compatible(ty)
            }
        }
        impl<'r> sqlx::Decode<'r, Postgres> for $ty {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                let raw = <&str as sqlx::Decode<Postgres>>::decode(value)?;
                <$ty>::parse(raw)
                    .ok_or_else(|| format!("unknown {} `{raw}`", stringify!($ty)).into())
            }
        }
        impl sqlx::Encode<'_, Postgres> for $ty {
            fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <&str as sqlx::Encode<Postgres>>::encode(self.as_str(), buf)
            }
        }
    };
}
text_enum!(Plan);
text_enum!(TenantStatus);
text_enum!(Mode);

/// A `tenants` row as selected: the tenant with its quota spread over three columns.
#[derive(sqlx::FromRow)]
pub struct TenantRow {
    pub id: Uuid,
    pub name: String,
    pub plan: Plan,
    pub monthly_requests: Option<i64>,
    pub requests_per_second: Option<i32>,
    pub max_sessions: Option<i32>,
    pub status: TenantStatus,
    pub created_at: DateTime<Utc>,
}

impl From<TenantRow> for Tenant {
    fn from(r: TenantRow) -> Self {
        Tenant {
            id: r.id,
            name: r.name,
            plan: r.plan,
            quota: Quota {
                monthly_requests: r.monthly_requests,
                requests_per_second: r.requests_per_second,
                max_sessions: r.max_sessions,
            },
            status: r.status,
            created_at: r.created_at,
        }
    }
}

fn name_taken(name: &str) -> impl FnOnce() -> String + '_ {
    move || format!("a tenant named `{name}` already exists")
}

pub async fn insert(
    conn: &mut PgConnection,
    name: &str,
    plan: Plan,
    quota: &Quota,
) -> Result<Tenant, StoreError> {
    let row = sqlx::query_as!(
        TenantRow,
        r#"INSERT INTO tenants (id, name, plan, monthly_requests, requests_per_second, max_sessions)
           VALUES ($1, $2, $3, $4, $5, $6)
           RETURNING id, name, plan AS "plan: Plan", monthly_requests, requests_per_second,
                     max_sessions, status AS "status: TenantStatus", created_at"#,
        Uuid::now_v7(),
        name,
        plan.as_str(),
        quota.monthly_requests,
        quota.requests_per_second,
        quota.max_sessions,
    )
    .fetch_one(conn)
    .await
    .on_constraint("tenants_name_key", name_taken(name))?;
    Ok(row.into())
}

pub async fn find<'e>(ex: impl PgExecutor<'e>, id: Uuid) -> Result<Option<Tenant>, StoreError> {
    let row = sqlx::query_as!(
        TenantRow,
        r#"SELECT id, name, plan AS "plan: Plan", monthly_requests, requests_per_second,
                  max_sessions, status AS "status: TenantStatus", created_at
           FROM tenants WHERE id = $1"#,
        id
    )
    .fetch_optional(ex)
    .await?;
    Ok(row.map(Into::into))
}

/// The tenant, locked until the transaction ends.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Option<Tenant>, StoreError> {
    let row = sqlx::query_as!(
        TenantRow,
        r#"SELECT id, name, plan AS "plan: Plan", monthly_requests, requests_per_second,
                  max_sessions, status AS "status: TenantStatus", created_at
           FROM tenants WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Into::into))
}

pub async fn id_named<'e>(ex: impl PgExecutor<'e>, name: &str) -> Result<Option<Uuid>, StoreError> {
    Ok(
        sqlx::query_scalar!("SELECT id FROM tenants WHERE name = $1", name)
            .fetch_optional(ex)
            .await?,
    )
}

/// One page of tenants by name, and how many there are in all.
pub async fn list(db: &crate::db::Db, window: Window) -> Result<Page<Tenant>, StoreError> {
    let total = sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM tenants"#)
        .fetch_one(db)
        .await?;
    let rows = sqlx::query_as!(
        TenantRow,
        r#"SELECT id, name, plan AS "plan: Plan", monthly_requests, requests_per_second,
                  max_sessions, status AS "status: TenantStatus", created_at
           FROM tenants ORDER BY name LIMIT $1 OFFSET $2"#,
        window.limit,
        window.offset
    )
    .fetch_all(db)
    .await?;
    Ok(Page {
        items: rows.into_iter().map(Into::into).collect(),
        total,
    })
}

/// Writes every field of `tenant` but its id and creation time.
pub async fn update(conn: &mut PgConnection, tenant: &Tenant) -> Result<Tenant, StoreError> {
    let row = sqlx::query_as!(
        TenantRow,
        r#"UPDATE tenants SET name = $2, plan = $3, monthly_requests = $4, requests_per_second = $5,
                  max_sessions = $6, status = $7
           WHERE id = $1
           RETURNING id, name, plan AS "plan: Plan", monthly_requests, requests_per_second,
                     max_sessions, status AS "status: TenantStatus", created_at"#,
        tenant.id,
        tenant.name,
        tenant.plan.as_str(),
        tenant.quota.monthly_requests,
        tenant.quota.requests_per_second,
        tenant.quota.max_sessions,
        tenant.status.as_str(),
    )
    .fetch_optional(conn)
    .await
    .on_constraint("tenants_name_key", name_taken(&tenant.name))?;
    row.map(Into::into).ok_or(StoreError::NotFound("tenant"))
}

/// What deleting a tenant left to do and undid.
pub struct Deleted {
    /// Its upstream sessions, now recorded for deletion on the upstream.
    pub upstream_sessions: Vec<String>,
    /// The keys that were still valid and are revoked now.
    pub revoked_keys: Vec<String>,
}

/// Deletes the (locked) tenant. Its upstream sessions are recorded first, in the same
/// transaction: if the upstream call fails or we crash, they are still known and deleted
/// later. Only its live ones: test sessions were never on the upstream.
pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<Deleted, StoreError> {
    let upstream_sessions = sqlx::query_scalar!(
        "INSERT INTO upstream_session_deletions (upstream_name, tenant_id)
         SELECT upstream_name, tenant_id FROM sessions WHERE tenant_id = $1 AND mode = 'live'
         ON CONFLICT (upstream_name) DO NOTHING RETURNING upstream_name",
        id
    )
    .fetch_all(&mut *conn)
    .await?;
    let revoked_keys = sqlx::query_scalar!(
        "UPDATE tenant_keys SET revoked_at = now()
         WHERE tenant_id = $1 AND (revoked_at IS NULL OR revoked_at > now()) RETURNING id",
        id
    )
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query!("DELETE FROM tenants WHERE id = $1", id)
        .execute(&mut *conn)
        .await?;
    Ok(Deleted {
        upstream_sessions,
        revoked_keys,
    })
}

/// Claims up to 100 recorded upstream session deletions that are due, by moving their next
/// attempt a minute on, so replicas never work on the same one at once.
pub async fn claim_session_deletions(db: &crate::db::Db) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar!(
        "UPDATE upstream_session_deletions SET next_attempt_at = now() + interval '60 seconds'
          WHERE upstream_name IN (
                SELECT upstream_name FROM upstream_session_deletions
                 WHERE next_attempt_at <= now()
                 ORDER BY requested_at LIMIT 100 FOR UPDATE SKIP LOCKED)
          RETURNING upstream_name"
    )
    .fetch_all(db)
    .await?)
}

pub async fn session_deleted(db: &crate::db::Db, upstream_name: &str) -> Result<(), StoreError> {
    sqlx::query!(
        "DELETE FROM upstream_session_deletions WHERE upstream_name = $1",
        upstream_name
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Records a failed attempt; the next waits 2, 4, 8 ... seconds, at most 5 minutes.
pub async fn session_deletion_failed(
    db: &crate::db::Db,
    upstream_name: &str,
    why: &str,
) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE upstream_session_deletions
            SET attempts = attempts + 1, last_error = $2,
                next_attempt_at = now() + make_interval(secs => LEAST(power(2, attempts + 1), 300))
          WHERE upstream_name = $1",
        upstream_name,
        why
    )
    .execute(db)
    .await?;
    Ok(())
}
