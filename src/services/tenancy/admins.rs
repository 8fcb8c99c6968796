//! Admin accounts: creating and deleting them, and changing a password.

use crate::db::Db;
use crate::domain::Invalid;
use crate::services::auth::{password, Change};
use crate::services::tenancy::TenancyError;
use crate::store::admins::{self, AdminView};
use crate::store::audit::{Actor, Audit, AuditedTx};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

pub const MIN_PASSWORD_CHARS: usize = 12;
/// No admin's name is longer (`check_username`).
pub const MAX_USERNAME_BYTES: usize = 64;

fn check_username(name: &str) -> Result<(), Invalid> {
    let ok = (1..=MAX_USERNAME_BYTES).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'@'));
    ok.then_some(()).ok_or_else(|| {
        Invalid::new(
            "username",
            "username must be 1 to 64 characters of A-Za-z0-9_-.@",
        )
    })
}

pub fn check_password(pw: &SecretString) -> Result<(), Invalid> {
    if pw.expose_secret().chars().count() < MIN_PASSWORD_CHARS {
        return Err(Invalid::new(
            "password",
            format!("password must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Creates an admin (the API and `wa-gateway admin create-admin`).
pub async fn create(
    db: &Db,
    actor: &Actor,
    username: &str,
    password: &SecretString,
) -> Result<AdminView, TenancyError> {
    check_username(username)?;
    check_password(password)?;
    let hash = password::hash(password.expose_secret().to_owned()).await?;
    let mut tx = AuditedTx::begin(db, actor).await?;
    let created = admins::insert(tx.conn(), username, &hash).await?;
    let details = serde_json::json!({"username": username});
    tx.commit(Audit::new("admin.create", "admin", created.id, details))
        .await?;
    Ok(created)
}

/// Deletes an admin (its tokens stop working at once), never the last one.
pub async fn delete(db: &Db, actor: &Actor, target: Uuid) -> Result<(), TenancyError> {
    let mut tx = AuditedTx::begin(db, actor).await?;
    let ids = admins::lock_all(tx.conn()).await?;
    if !ids.contains(&target) {
        return Err(TenancyError::NoAdmin(target));
    }
    if ids.len() == 1 {
        return Err(TenancyError::Refused("the last admin cannot be deleted"));
    }
    admins::delete(tx.conn(), target).await?;
    let audit = Audit::new("admin.delete", "admin", target, serde_json::json!({}));
    tx.commit_announcing(audit, &Change::Admin(target)).await?;
    Ok(())
}

/// Sets an admin's password; every token issued before stops working.
pub async fn set_password(
    db: &Db,
    actor: &Actor,
    id: Uuid,
    new_password: &SecretString,
) -> Result<(), TenancyError> {
    check_password(new_password)?;
    let hash = password::hash(new_password.expose_secret().to_owned()).await?;
    let mut tx = AuditedTx::begin(db, actor).await?;
    admins::set_password(tx.conn(), id, &hash).await?;
    let audit = Audit::new("admin.change_password", "admin", id, serde_json::json!({}));
    tx.commit_announcing(audit, &Change::Admin(id)).await?;
    Ok(())
}
