//! What a tenant does to one of its endpoints beyond registering it: rotating its Standard
//! Webhooks secret, enabling it again after it was disabled, and recovering its session's
//! failed deliveries since a time (rate-limited).

use crate::db::Db;
use crate::domain::webhook_signing::{Scheme, WebhookSecret};
use crate::services::webhooks::error::WebhookError;
use crate::services::webhooks::listing::SubscriptionLists;
use crate::store::audit::{self, Actor, Audit};
use crate::store::webhooks::health::{self, Recovery};
use crate::store::webhooks::outbox;
use crate::store::webhooks::subscriptions::{self, Named, Subscription};
use crate::store::StoreError;
use chrono::{DateTime, Utc};
use serde_json::json;
use std::time::Duration;

/// How often a session's failed deliveries may be recovered.
pub const RECOVER_EVERY: Duration = Duration::from_secs(60);
/// Deliveries one recovery queues again at most (as Svix's recovery).
pub const RECOVER_AT_MOST: i64 = 10_000;

/// A secret just rotated in: shown once.
#[derive(Debug)]
pub struct Rotated {
    pub secret: WebhookSecret,
    /// Until then the previous secret signs too; `None` without a grace period.
    pub previous_expires_at: Option<DateTime<Utc>>,
}

/// Signs the named endpoint's deliveries with `secret` (or a new one) from now on, and with
/// its previous secret too for `grace`. Only Standard Webhooks endpoints have a secret to
/// rotate. The tenant's cached subscription list (`lists`) is dropped before this answers.
pub async fn rotate_secret(
    db: &Db,
    lists: &SubscriptionLists,
    named: Named<'_>,
    secret: Option<WebhookSecret>,
    grace: Duration,
) -> Result<Rotated, WebhookError> {
    let secret = secret.unwrap_or_else(WebhookSecret::generate);
    let rotated = subscriptions::rotate_secret(db, named, secret.expose(), grace).await?;
    lists.changed(named.tenant, named.mode).await;
    match rotated {
        None => Err(WebhookError::NoSuchWebhookId(named.id.to_string())),
        Some((Scheme::HmacSha512, _)) => Err(WebhookError::NotStandard),
        Some((Scheme::Standard, previous_expires_at)) => Ok(Rotated {
            secret,
            previous_expires_at,
        }),
    }
}

/// Enables the named endpoint again (a no-op when it is enabled), recorded in the audit log;
/// the tenant's cached subscription list (`lists`) is dropped before this answers.
pub async fn enable(
    db: &Db,
    lists: &SubscriptionLists,
    named: Named<'_>,
) -> Result<Subscription, WebhookError> {
    let mut tx = db.begin().await.map_err(StoreError::from)?;
    let enabled = subscriptions::enable(&mut tx, named)
        .await?
        .ok_or_else(|| WebhookError::NoSuchWebhookId(named.id.to_string()))?;
    let details = json!({"session": named.session, "mode": named.mode.as_str(),
                         "webhookUrl": enabled.url});
    let entry = Audit::new("webhook.enable", "webhook", named.id, details);
    audit::record(&mut *tx, &Actor::tenant(named.tenant), &entry).await?;
    tx.commit().await.map_err(StoreError::from)?;
    lists.changed(named.tenant, named.mode).await;
    Ok(enabled)
}

/// Queues the session's failed deliveries of events since `recovery.since` again (those of
/// enabled endpoints), at most [`RECOVER_AT_MOST`] and within the tenant's cap of pending
/// deliveries, and wakes the workers of every replica; at most once per [`RECOVER_EVERY`].
/// Answers how many were queued.
pub async fn recover(
    db: &Db,
    recovery: &Recovery<'_>,
    max_pending: i64,
) -> Result<i64, WebhookError> {
    let mut tx = db.begin().await.map_err(StoreError::from)?;
    if let Err(wait) = health::take_recovery_slot(&mut tx, recovery, RECOVER_EVERY).await? {
        return Err(WebhookError::RecoveredRecently(wait));
    }
    let recovered = health::recover(&mut tx, recovery, RECOVER_AT_MOST, max_pending).await?;
    outbox::notify(&mut *tx).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(recovered)
}
