//! The first admin: from `WAGW_ADMIN_USER`/`WAGW_ADMIN_PASSWORD`, or in sandbox mode a
//! generated one whose password is written once to a file only the owner can read.

use crate::config::Config;
use crate::db::Db;
use crate::services::auth::password;
use secrecy::ExposeSecret;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use uuid::Uuid;

pub const SANDBOX_ADMIN: &str = "admin";
pub const PASSWORD_FILE: &str = "initial-admin-password";

/// Creates the configured admin when absent (never overwriting an existing one's password);
/// in sandbox mode with no admin at all, creates `admin` with a random password.
pub async fn ensure_first_admin(pool: &Db, config: &Config) -> anyhow::Result<()> {
    if let (Some(user), Some(pw)) = (
        &config.admin.bootstrap_user,
        &config.admin.bootstrap_password,
    ) {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM admins WHERE username = $1)")
                .bind(user)
                .fetch_one(pool)
                .await?;
        if !exists {
            let hash = password::hash(pw.expose_secret().to_owned()).await?;
            let created = sqlx::query(
                "INSERT INTO admins (id, username, password_hash) VALUES ($1, $2, $3) ON CONFLICT (username) DO NOTHING",
            )
            .bind(Uuid::now_v7())
            .bind(user)
            .bind(hash)
            .execute(pool)
            .await?;
            if created.rows_affected() == 1 {
                tracing::info!(username = %user, "created the admin from WAGW_ADMIN_USER");
            }
        }
        return Ok(());
    }
    if !config.sandbox() {
        return Ok(());
    }
    let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM admins)")
        .fetch_one(pool)
        .await?;
    if any {
        return Ok(());
    }
    let secret = password::random_password();
    let hash = password::hash(secret.clone()).await?;
    // Only if there is still no admin: two replicas starting together create one.
    let created = sqlx::query(
        "INSERT INTO admins (id, username, password_hash)
         SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM admins)
         ON CONFLICT (username) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(SANDBOX_ADMIN)
    .bind(hash)
    .execute(pool)
    .await?;
    if created.rows_affected() == 1 {
        let path = write_password_file(config, &secret)?;
        tracing::warn!(
            path = %path.display(),
            "sandbox mode: created admin `{SANDBOX_ADMIN}`; its password is in the file (read it, then delete it)"
        );
    }
    Ok(())
}

fn write_password_file(config: &Config, secret: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(&config.data_dir)?;
    let path = config.data_dir.join(PASSWORD_FILE);
    // A file left by an earlier database is stale: replace it, owner-only from the start.
    let _ = std::fs::remove_file(&path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    writeln!(file, "{secret}")?;
    Ok(path)
}
