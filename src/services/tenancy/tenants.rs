//! Tenants: creating, re-planning, suspending and deleting them.
//!
//! Deleting a tenant deletes its row and with it (by foreign keys) its keys, session names,
//! idempotency records and usage rollups; the audit log keeps the history. Its sessions on
//! the upstream are deleted through the upstream client right away; any the upstream could
//! not confirm stay in `upstream_session_deletions` and are retried in the background
//! (`delete_pending_upstream_sessions`, from the webhook delivery thread) and can be
//! inspected by an operator.

use crate::db::Db;
use crate::domain::tenant::{check_name, Plan, Quota, Tenant, TenantStatus};
use crate::services::auth::{Auth, Change};
use crate::services::pacing::{self, PacingError, TenantPacingPatch};
use crate::services::tenancy::TenancyError;
use crate::services::upstream::{Gateway, UpstreamCall};
use crate::store::audit::{Actor, Audit, AuditedTx};
use crate::store::tenants;
use actix_web::http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// A unique slug: 1 to 63 characters of a-z, 0-9 and `-`, starting with a letter or digit.
    #[schema(example = "acme")]
    pub name: String,
    pub plan: Plan,
    /// Only with plan `custom` (required there).
    pub quota: Option<Quota>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantPatch {
    pub name: Option<String>,
    /// A plan other than `custom` sets the quota from the plan table.
    pub plan: Option<Plan>,
    /// Setting a quota makes the plan `custom`.
    pub quota: Option<Quota>,
    pub status: Option<TenantStatus>,
    /// The tenant's send pacing: `default` for its sessions without a policy of their own,
    /// `ceiling` the loosest any may go (a field left out is kept, `null` removes it).
    pub pacing: Option<TenantPacingPatch>,
}

impl TenantPatch {
    /// The tenant as it is with the patch applied.
    fn applied_to(self, current: &Tenant) -> Result<Tenant, TenancyError> {
        let (plan, quota) = match (self.plan, self.quota) {
            (None, None) => (current.plan, current.quota.clone()),
            (Some(Plan::Custom), None) => (Plan::Custom, current.quota.clone()),
            (None | Some(Plan::Custom), Some(quota)) => {
                (Plan::Custom, Quota::for_plan(Plan::Custom, Some(quota))?)
            }
            (Some(plan), quota) => (plan, Quota::for_plan(plan, quota)?),
        };
        Ok(Tenant {
            name: self.name.unwrap_or_else(|| current.name.clone()),
            plan,
            quota,
            status: self.status.unwrap_or(current.status),
            ..current.clone()
        })
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TenantDeleted {
    pub id: Uuid,
    /// Upstream sessions deleted now.
    pub upstream_sessions_deleted: u32,
    /// Upstream sessions recorded for a later retry (the upstream did not confirm).
    pub upstream_sessions_pending: u32,
}

pub async fn create(db: &Db, actor: &Actor, new: NewTenant) -> Result<Tenant, TenancyError> {
    check_name(&new.name)?;
    let quota = Quota::for_plan(new.plan, new.quota)?;
    let mut tx = AuditedTx::begin(db, actor).await?;
    let tenant = tenants::insert(tx.conn(), &new.name, new.plan, &quota).await?;
    let details =
        serde_json::json!({"name": tenant.name, "plan": tenant.plan, "quota": tenant.quota});
    tx.commit(Audit::new("tenant.create", "tenant", tenant.id, details))
        .await?;
    Ok(tenant)
}

pub async fn find(db: &Db, id: Uuid) -> Result<Tenant, TenancyError> {
    tenants::find(db, id)
        .await?
        .ok_or(TenancyError::NoTenant(id))
}

/// Applies the patch; takes effect on this replica at once, on the others as the
/// announcement reaches them.
pub async fn update(
    db: &Db,
    auth: &Auth,
    actor: &Actor,
    id: Uuid,
    patch: TenantPatch,
) -> Result<Tenant, TenancyError> {
    if let Some(name) = &patch.name {
        check_name(name)?;
    }
    let mut tx = AuditedTx::begin(db, actor).await?;
    let current = tenants::lock(tx.conn(), id)
        .await?
        .ok_or(TenancyError::NoTenant(id))?;
    let pacing = match &patch.pacing {
        Some(change) => Some(pacing::patch_tenant(tx.conn(), id, change).await.map_err(
            |e| match e {
                PacingError::Invalid(invalid) => TenancyError::Invalid(invalid),
                PacingError::Store(store) => TenancyError::Store(store),
                other => TenancyError::Internal(other.into()),
            },
        )?),
        None => None,
    };
    let updated = tenants::update(tx.conn(), &patch.applied_to(&current)?).await?;
    let action = match (current.status, updated.status) {
        (before, after) if before == after => "tenant.update",
        (_, TenantStatus::Suspended) => "tenant.suspend",
        (_, TenantStatus::Active) => "tenant.reactivate",
    };
    let mut details = serde_json::json!({"before": current, "after": updated});
    if let Some((before, after)) = pacing {
        details["before"]["pacing"] = serde_json::json!(before);
        details["after"]["pacing"] = serde_json::json!(after);
    }
    let change = Change::Tenant(id);
    tx.commit_announcing(Audit::new(action, "tenant", id, details), &change)
        .await?;
    // A new quota applies to this replica's very next call.
    auth.apply(&change).await;
    Ok(updated)
}

/// Deletes the tenant (its keys stop working at once) and then its upstream sessions.
pub async fn delete(
    db: &Db,
    gateway: Gateway<'_>,
    actor: &Actor,
    id: Uuid,
) -> Result<TenantDeleted, TenancyError> {
    let mut tx = AuditedTx::begin(db, actor).await?;
    let tenant = tenants::lock(tx.conn(), id)
        .await?
        .ok_or(TenancyError::NoTenant(id))?;
    let deleted = tenants::delete(tx.conn(), id).await?;
    let details = serde_json::json!({
        "tenant": tenant,
        "revoked_keys": deleted.revoked_keys,
        "upstream_sessions": deleted.upstream_sessions.len(),
    });
    tx.commit_announcing(
        Audit::new("tenant.delete", "tenant", id, details),
        &Change::Tenant(id),
    )
    .await?;
    let (deleted, pending) = delete_pending_upstream_sessions(db, gateway).await;
    Ok(TenantDeleted {
        id,
        upstream_sessions_deleted: deleted,
        upstream_sessions_pending: pending,
    })
}

/// Deletes the recorded upstream sessions that are due (those of a tenant just deleted, and
/// earlier failures whose backoff has passed); answers how many were deleted and how many
/// remain recorded. Run after every tenant deletion and in the background.
pub async fn delete_pending_upstream_sessions(db: &Db, gateway: Gateway<'_>) -> (u32, u32) {
    let names = match tenants::claim_session_deletions(db).await {
        Ok(names) => names,
        Err(e) => {
            tracing::warn!("reading pending upstream session deletions: {e}");
            return (0, 0);
        }
    };
    let (mut deleted, mut pending) = (0, 0);
    for name in names {
        let written = match delete_upstream_session(gateway, &name).await {
            Ok(()) => {
                deleted += 1;
                tenants::session_deleted(db, &name).await
            }
            Err(why) => {
                pending += 1;
                tracing::warn!(session = %name, "deleting an upstream session failed: {why}");
                tenants::session_deletion_failed(db, &name, &why).await
            }
        };
        if let Err(e) = written {
            tracing::warn!("recording an upstream session deletion: {e}");
        }
    }
    (deleted, pending)
}

/// Deletes one session on the upstream, admitted like every call; one it does not know is as
/// good as deleted.
async fn delete_upstream_session(gateway: Gateway<'_>, name: &str) -> Result<(), String> {
    let path = format!("/v1/sessions/{name}");
    let call = UpstreamCall::own(Method::DELETE, path, "/v1/sessions/{session}", None);
    match gateway.call_own("deleteSession", &call).await {
        Ok(a) if a.status.is_success() || a.status == StatusCode::NOT_FOUND => Ok(()),
        Ok(a) => Err(format!("the upstream answered {}", a.status)),
        Err(e) => Err(e.to_string()),
    }
}
