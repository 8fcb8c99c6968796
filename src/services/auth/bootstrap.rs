//! The first admin: from `WAGW_ADMIN_USER`/`WAGW_ADMIN_PASSWORD`, or in sandbox mode a
//! generated one whose password is written once to a file only the owner can read.

use crate::config::Config;
use crate::db::Db;
use crate::services::auth::password;
use crate::store::admins;
use secrecy::ExposeSecret;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

pub const SANDBOX_ADMIN: &str = "admin";
pub const PASSWORD_FILE: &str = "initial-admin-password";

/// Creates the configured admin when absent (never overwriting an existing one's password);
/// in sandbox mode with no admin at all, creates `admin` with a random password.
pub async fn ensure_first_admin(pool: &Db, config: &Config) -> anyhow::Result<()> {
    if let (Some(user), Some(pw)) = (
        &config.admin.bootstrap_user,
        &config.admin.bootstrap_password,
    ) {
        if !admins::exists_named(pool, user).await? {
            let hash = password::hash(pw.expose_secret().to_owned()).await?;
            if admins::insert_unless_named(pool, user, &hash).await? {
                tracing::info!(username = %user, "created the admin from WAGW_ADMIN_USER");
            }
        }
        return Ok(());
    }
    if !config.sandbox() || admins::any(pool).await? {
        return Ok(());
    }
    let secret = password::random_password();
    let hash = password::hash(secret.clone()).await?;
    // Only if there is still no admin: two replicas starting together create one.
    if admins::insert_first(pool, SANDBOX_ADMIN, &hash).await? {
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
