//! Endpoint health: an endpoint that keeps failing is disabled (as Svix does after 5 days
//! without a success), which its tenant learns from a `webhook.disabled` event in its event log
//! and admins from the audit log; the tenant enables it again and recovers what failed.

use crate::db::Db;
use crate::services::webhooks::listing::SubscriptionLists;
use crate::store::audit::{self, Actor, Audit};
use crate::store::webhooks::health::{self, Disabled, DISABLED_EVENT};
use crate::store::StoreError;
use serde_json::json;
use uuid::Uuid;

/// Disables the endpoint (unless it already is), ends its pending deliveries, and records
/// both the tenant's event and the audit entry, all in one transaction, then drops the
/// tenant's cached subscription list here at once. Answers whether this call disabled it.
pub async fn disable(
    db: &Db,
    lists: &SubscriptionLists,
    subscription: Uuid,
    reason: &str,
) -> Result<bool, StoreError> {
    let mut tx = db.begin().await?;
    let Some(disabled) = health::disable(&mut tx, subscription, reason).await? else {
        return Ok(false);
    };
    let event_id = format!("evt_gw_{}", Uuid::now_v7().simple());
    let body = envelope(&disabled, &event_id, reason);
    health::log_event(&mut tx, &disabled, &event_id, DISABLED_EVENT, &body).await?;
    let details = json!({
        "tenantId": disabled.tenant_id,
        "mode": disabled.mode.as_str(),
        "session": disabled.session_name,
        "webhookUrl": disabled.url,
        "reason": reason,
        "failingSince": disabled.failing_since,
    });
    let entry = Audit::new("webhook.disable", "webhook", disabled.id, details);
    audit::record(&mut *tx, &Actor::gateway(), &entry).await?;
    tx.commit().await?;
    lists.changed(disabled.tenant_id, disabled.mode).await;
    tracing::warn!(
        tenant = %disabled.tenant_id,
        webhook = %disabled.id,
        session = disabled.session_name,
        "webhook disabled: {reason}"
    );
    Ok(true)
}

/// The `webhook.disabled` event as the tenant reads it in its log: the relayed envelope's
/// shape, with the endpoint in `payload`.
fn envelope(disabled: &Disabled, event_id: &str, reason: &str) -> Vec<u8> {
    let body = json!({
        "id": event_id,
        "timestamp": disabled.disabled_at.timestamp_millis(),
        "event": DISABLED_EVENT,
        "session": disabled.session_name,
        "me": null,
        "payload": {
            "webhookId": disabled.id,
            "webhookUrl": disabled.url,
            "reason": reason,
            "failingSince": disabled.failing_since,
            "disabledAt": disabled.disabled_at,
        },
        "engine": null,
    });
    serde_json::to_vec(&body).expect("a JSON value serialises")
}
