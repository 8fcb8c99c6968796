//! The `admins` table, and its only writer: the first admin at start-up, the admin API and
//! the command line all come here.

use crate::store::{ResultExt, StoreError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

#[derive(Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AdminView {
    pub id: Uuid,
    pub username: String,
    pub created_at: DateTime<Utc>,
}

/// What a login is checked against.
pub struct Credentials {
    pub id: Uuid,
    pub token_version: i32,
    pub password_hash: String,
}

/// Writes a new admin; a conflict when the name is taken.
pub async fn insert(
    conn: &mut PgConnection,
    username: &str,
    password_hash: &str,
) -> Result<AdminView, StoreError> {
    sqlx::query_as!(
        AdminView,
        "INSERT INTO admins (id, username, password_hash) VALUES ($1, $2, $3)
         RETURNING id, username, created_at",
        Uuid::now_v7(),
        username,
        password_hash
    )
    .fetch_one(conn)
    .await
    .on_constraint("admins_username_key", || {
        format!("an admin named `{username}` already exists")
    })
}

/// Writes the admin unless one of that name exists (its password is never overwritten);
/// true when written.
pub async fn insert_unless_named<'e>(
    ex: impl PgExecutor<'e>,
    username: &str,
    password_hash: &str,
) -> Result<bool, StoreError> {
    insert_checked(ex, username, password_hash, false).await
}

/// Writes the admin only while there is no admin at all, so replicas starting together
/// create one; true when written.
pub async fn insert_first<'e>(
    ex: impl PgExecutor<'e>,
    username: &str,
    password_hash: &str,
) -> Result<bool, StoreError> {
    insert_checked(ex, username, password_hash, true).await
}

/// Writes the admin unless one of that name exists or, when `only_first`, any admin does;
/// the check and the write are one statement so concurrent replicas agree.
async fn insert_checked<'e>(
    ex: impl PgExecutor<'e>,
    username: &str,
    password_hash: &str,
    only_first: bool,
) -> Result<bool, StoreError> {
    let done = sqlx::query!(
        "INSERT INTO admins (id, username, password_hash)
         SELECT $1, $2, $3 WHERE NOT $4 OR NOT EXISTS (SELECT 1 FROM admins)
         ON CONFLICT (username) DO NOTHING",
        Uuid::now_v7(),
        username,
        password_hash,
        only_first
    )
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn exists_named<'e>(ex: impl PgExecutor<'e>, username: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM admins WHERE username = $1) AS "exists!""#,
        username
    )
    .fetch_one(ex)
    .await?)
}

pub async fn any<'e>(ex: impl PgExecutor<'e>) -> Result<bool, StoreError> {
    Ok(
        sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM admins) AS "exists!""#)
            .fetch_one(ex)
            .await?,
    )
}

pub async fn credentials<'e>(
    ex: impl PgExecutor<'e>,
    username: &str,
) -> Result<Option<Credentials>, StoreError> {
    Ok(sqlx::query_as!(
        Credentials,
        "SELECT id, token_version, password_hash FROM admins WHERE username = $1",
        username
    )
    .fetch_optional(ex)
    .await?)
}

pub async fn password_hash<'e>(
    ex: impl PgExecutor<'e>,
    id: Uuid,
) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar!("SELECT password_hash FROM admins WHERE id = $1", id)
            .fetch_optional(ex)
            .await?,
    )
}

pub async fn list<'e>(ex: impl PgExecutor<'e>) -> Result<Vec<AdminView>, StoreError> {
    Ok(sqlx::query_as!(
        AdminView,
        "SELECT id, username, created_at FROM admins ORDER BY username"
    )
    .fetch_all(ex)
    .await?)
}

/// Every admin's id, locked until the transaction ends: concurrent deletions take turns, so
/// two cannot remove the last two admins.
pub async fn lock_all(conn: &mut PgConnection) -> Result<Vec<Uuid>, StoreError> {
    Ok(sqlx::query_scalar!("SELECT id FROM admins FOR UPDATE")
        .fetch_all(conn)
        .await?)
}

pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<(), StoreError> {
    sqlx::query!("DELETE FROM admins WHERE id = $1", id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Sets the password and bumps the token version: every token issued before carries the
/// old version and is refused from the commit on.
pub async fn set_password(
    conn: &mut PgConnection,
    id: Uuid,
    password_hash: &str,
) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE admins SET password_hash = $1, token_version = token_version + 1 WHERE id = $2",
        password_hash,
        id
    )
    .execute(conn)
    .await?;
    Ok(())
}
