//! Setting policies: a tenant's own for one of its sessions (never looser than its ceiling),
//! and an admin's default and ceiling for a tenant. Each change is announced in the
//! transaction that makes it, so every replica's cache drops what it held.

use super::{Pacing, PacingError};
use crate::domain::pacing::{Policy, TenantPacing};
use crate::domain::UpstreamSession;
use crate::store::pacing::{self as store, LineStanding};
use serde::{Deserialize, Deserializer, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

/// A session's pacing as its tenant sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionPacingView {
    /// The session's name.
    #[schema(example = "default")]
    pub session: String,
    /// The session's own policy; null: none (the tenant's default applies).
    pub policy: Option<Policy>,
    /// The tenant's default, set by an admin, for sessions without a policy of their own.
    pub tenant_default: Option<Policy>,
    /// The loosest the tenant's sessions may go, set by an admin: it tightens every policy.
    pub ceiling: Option<Policy>,
    /// What the session's sends are paced by; null: they are not paced.
    pub effective: Option<Policy>,
    /// Where its line of paced sends stands.
    pub line: LineStanding,
}

/// An admin's change to a tenant's pacing: a field left out is kept, `null` removes it.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantPacingPatch {
    /// The policy of the tenant's sessions without one of their own.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Policy>)]
    pub default: Option<Option<Policy>>,
    /// The loosest any of its sessions may go.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Policy>)]
    pub ceiling: Option<Option<Policy>>,
}

/// A field that is present, even as `null`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<Policy>>, D::Error> {
    Option::<Policy>::deserialize(d).map(Some)
}

impl TenantPacingPatch {
    pub fn applied_to(&self, current: &TenantPacing) -> TenantPacing {
        TenantPacing {
            default: self.default.unwrap_or(current.default),
            ceiling: self.ceiling.unwrap_or(current.ceiling),
        }
    }
}

impl Pacing {
    /// The session's pacing, read afresh (not from the cache).
    pub async fn view(
        &self,
        tenant: Uuid,
        session: &str,
        upstream: &UpstreamSession,
    ) -> Result<SessionPacingView, PacingError> {
        let tenant_pacing = store::tenant_pacing(&self.db, tenant)
            .await?
            .unwrap_or_default();
        let own = store::own_policy(&self.db, upstream.as_str()).await?;
        Ok(SessionPacingView {
            session: session.to_owned(),
            policy: own,
            tenant_default: tenant_pacing.default,
            ceiling: tenant_pacing.ceiling,
            effective: tenant_pacing.effective(own.as_ref()),
            line: store::standing(&self.db, upstream.as_str()).await?,
        })
    }

    /// Sets (or with `None` removes) the session's own policy. A value looser than the
    /// tenant's ceiling is refused, naming it; a limit left out takes the ceiling's.
    pub async fn set_own(
        &self,
        tenant: Uuid,
        upstream: &UpstreamSession,
        policy: Option<&Policy>,
    ) -> Result<(), PacingError> {
        let mut tx = self
            .db
            .begin()
            .await
            .map_err(crate::store::StoreError::from)?;
        // The ceiling as it stands now, held until the policy is written.
        let ceiling = store::lock_tenant_pacing(&mut tx, tenant)
            .await?
            .unwrap_or_default()
            .ceiling;
        if let (Some(policy), Some(ceiling)) = (policy, &ceiling) {
            policy.check_within(ceiling, "")?;
        }
        store::set_own_policy(&mut *tx, upstream.as_str(), policy).await?;
        store::announce(&mut *tx, &format!("policy:{}", upstream.as_str())).await?;
        tx.commit().await.map_err(crate::store::StoreError::from)?;
        // This replica at once; the others as the announcement reaches them.
        self.policies.session_changed(upstream.as_str()).await;
        Ok(())
    }
}

/// Applies an admin's change to the tenant's pacing in `conn` (the admin's audited
/// transaction), announced on its commit; answers the pacing before and after. The
/// default must keep within the ceiling.
pub async fn patch_tenant(
    conn: &mut PgConnection,
    tenant: Uuid,
    patch: &TenantPacingPatch,
) -> Result<(TenantPacing, TenantPacing), PacingError> {
    let before = store::tenant_pacing(&mut *conn, tenant)
        .await?
        .unwrap_or_default();
    let after = patch.applied_to(&before);
    after.check()?;
    store::set_tenant_pacing(&mut *conn, tenant, &after).await?;
    store::announce(&mut *conn, &format!("tenant:{tenant}")).await?;
    Ok((before, after))
}
