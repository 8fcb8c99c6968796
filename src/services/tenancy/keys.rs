//! Tenant keys: issued once in plaintext, stored as an argon2id hash, revoked and rotated
//! with a grace period. Revocations and rotations are announced, so every replica's cache
//! drops the key within a second.

use crate::db::Db;
use crate::domain::{api_key, Invalid, Mode, Scopes, SessionName};
use crate::services::auth::{password, Change};
use crate::services::tenancy::{tenants, TenancyError};
use crate::store::audit::{Actor, Audit, AuditedTx};
use crate::store::keys::{self, Grant, KeyView, NewKey};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

/// Longest grace a rotation may give the old key.
pub const MAX_GRACE_SECS: u64 = 30 * 86_400;
const DEFAULT_GRACE_SECS: u64 = 3_600;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyRequest {
    #[schema(example = "billing bot")]
    pub name: String,
    /// Any of `sessions:read`, `sessions:write`, `messages:send`, `groups:read`, `groups:write`,
    /// `channels:read`, `channels:write`, `contacts:read`, `presence:read`, `presence:write`,
    /// `webhooks:read`, `webhooks:write`, `usage:read`, `events:read`, or `*`.
    #[schema(example = json!(["messages:send", "sessions:read"]))]
    pub scopes: Vec<String>,
    /// Limits the key to these of the tenant's sessions; absent: all of them.
    pub sessions: Option<Vec<String>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// `live` (the default) reaches the hosted API and spends the month; `test` is served by
    /// the gateway's built-in simulator, spends nothing, and sees only test sessions. A test
    /// key's text starts `wagw_test_`.
    #[serde(default)]
    pub mode: Mode,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyCreated {
    /// The plaintext key: shown this once, never stored.
    #[schema(example = "wagw_3kT9xQ2mLp0Z_...")]
    pub key: String,
    /// The key as it is listed from now on.
    #[serde(flatten)]
    pub view: KeyView,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyRotated {
    #[serde(flatten)]
    pub key: KeyCreated,
    /// The old key's id and when it stops working.
    pub replaces: String,
    pub old_key_valid_until: DateTime<Utc>,
}

/// The request checked: a name, known scopes and valid session names (sorted, no
/// duplicates), an expiry in the future.
fn grant(req: NewKeyRequest) -> Result<Grant, Invalid> {
    let name = req.name.trim().to_owned();
    if name.is_empty() || name.len() > 100 {
        return Err(Invalid::new("name", "name must be 1 to 100 characters"));
    }
    let scopes = Scopes::parse_all(&req.scopes)?.names();
    let sessions = req
        .sessions
        .map(|list| {
            let mut names = list
                .iter()
                .map(|s| SessionName::parse(s).map(|n| n.as_str().to_owned()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Invalid::new("sessions", e.message))?;
            names.sort();
            names.dedup();
            Ok::<_, Invalid>(names)
        })
        .transpose()?;
    if req.expires_at.is_some_and(|t| t <= Utc::now()) {
        return Err(Invalid::new(
            "expires_at",
            "expires_at must be in the future",
        ));
    }
    Ok(Grant {
        name,
        mode: req.mode,
        scopes,
        sessions,
        expires_at: req.expires_at,
    })
}

/// Issues a key: the plaintext is returned once, only its hash is written.
async fn issue(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    grant: Grant,
) -> Result<KeyCreated, TenancyError> {
    let new = api_key::generate(grant.mode);
    let secret_hash = password::hash(new.secret.clone()).await?;
    let prefix = api_key::display_prefix(grant.mode, &new.id);
    let row = NewKey {
        id: &new.id,
        tenant_id,
        prefix: &prefix,
        secret_hash: &secret_hash,
        grant: &grant,
    };
    let view = keys::insert(conn, &row).await?;
    Ok(KeyCreated {
        key: new.plaintext,
        view,
    })
}

/// Creates a key for a tenant (the API and `wa-gateway admin create-key`).
pub async fn create(
    db: &Db,
    actor: &Actor,
    tenant: Uuid,
    req: NewKeyRequest,
) -> Result<KeyCreated, TenancyError> {
    tenants::find(db, tenant).await?;
    let grant = grant(req)?;
    let mut tx = AuditedTx::begin(db, actor).await?;
    let created = issue(tx.conn(), tenant, grant).await?;
    let view = &created.view;
    let details = serde_json::json!({"tenant_id": tenant, "name": view.name,
        "mode": view.mode, "scopes": view.scopes, "sessions": view.sessions, "expires_at": view.expires_at});
    tx.commit(Audit::new("key.create", "key", &view.id, details))
        .await?;
    Ok(created)
}

/// Revokes a key at once (ending a rotation's grace period too).
pub async fn revoke(db: &Db, actor: &Actor, tenant: Uuid, key: String) -> Result<(), TenancyError> {
    let mut tx = AuditedTx::begin(db, actor).await?;
    if !keys::revoke(tx.conn(), tenant, &key).await? {
        return Err(TenancyError::NoKey(key));
    }
    let audit = Audit::new(
        "key.revoke",
        "key",
        &key,
        serde_json::json!({"tenant_id": tenant}),
    );
    tx.commit_announcing(audit, &Change::Key(key)).await?;
    Ok(())
}

/// Issues a replacement with the same name, scopes and sessions; the old key keeps working
/// for `grace_seconds` (default one hour).
pub async fn rotate(
    db: &Db,
    actor: &Actor,
    tenant: Uuid,
    key: String,
    grace_seconds: Option<u64>,
) -> Result<KeyRotated, TenancyError> {
    let grace = grace_seconds.unwrap_or(DEFAULT_GRACE_SECS);
    if grace > MAX_GRACE_SECS {
        return Err(Invalid::new(
            "grace_seconds",
            format!("grace_seconds must be at most {MAX_GRACE_SECS}"),
        )
        .into());
    }
    let mut tx = AuditedTx::begin(db, actor).await?;
    let old = keys::lock(tx.conn(), tenant, &key)
        .await?
        .ok_or_else(|| TenancyError::NoKey(key.clone()))?;
    if old.revoked_at.is_some() {
        return Err(TenancyError::Refused(
            "this key is already revoked or being rotated; rotate its replacement instead",
        ));
    }
    let grant = Grant {
        scopes: Scopes::from_stored(&old.grant.scopes).names(),
        ..old.grant
    };
    let created = issue(tx.conn(), tenant, grant).await?;
    let valid_until = keys::replace(tx.conn(), &key, &created.view.id, grace).await?;
    let details = serde_json::json!({"tenant_id": tenant, "replaced_by": created.view.id, "grace_seconds": grace});
    tx.commit_announcing(
        Audit::new("key.rotate", "key", &key, details),
        &Change::Key(key.clone()),
    )
    .await?;
    Ok(KeyRotated {
        key: created,
        replaces: key,
        old_key_valid_until: valid_until,
    })
}
