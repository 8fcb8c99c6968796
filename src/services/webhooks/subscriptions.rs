//! The tenants' webhooks: adding and removing them (with the upstream's registration kept in
//! step), and sending a delivery again.

use crate::db::Db;
use crate::domain::webhooks::{NewSubscription, MAX_PER_SESSION};
use crate::domain::Mode;
use crate::services::webhooks::error::WebhookError;
use crate::services::webhooks::registration::{Registrar, SessionRef};
use crate::store::webhooks::deliveries::{self, Delivery};
use crate::store::webhooks::outbox;
use crate::store::webhooks::subscriptions::{self, Subscription, TENANT_FKEY};
use crate::store::StoreError;
use sqlx::PgConnection;
use uuid::Uuid;

/// Adds checked subscriptions to a session (one whose URL the session already has replaces
/// it), at most [`MAX_PER_SESSION`] in all, and brings the upstream's registration in step:
/// when this returns the upstream already sends the events they need to the gateway.
pub async fn subscribe(
    registrar: &Registrar<'_>,
    session: &SessionRef<'_>,
    new: &[NewSubscription],
) -> Result<Vec<Subscription>, WebhookError> {
    let mut tx = registrar.begin(session).await?;
    let mut added = Vec::with_capacity(new.len());
    for one in new {
        added.push(insert(&mut tx, session, one).await?);
    }
    let committed = registrar.commit(tx, session).await;
    // Even when the upstream's registration failed: the subscriptions are committed by then.
    list_changed(registrar, session).await;
    committed?;
    Ok(added)
}

/// One subscription, under the session's lock held by `conn`.
async fn insert(
    conn: &mut PgConnection,
    session: &SessionRef<'_>,
    new: &NewSubscription,
) -> Result<Subscription, WebhookError> {
    let (tenant, mode) = (session.tenant.id, session.mode);
    let url = new.url.as_str();
    let others = subscriptions::count_others(conn, tenant, mode, session.name, url).await?;
    if others >= MAX_PER_SESSION {
        return Err(WebhookError::TooMany);
    }
    subscriptions::upsert(conn, tenant, mode, session.name, new)
        .await
        .map_err(|e| match e {
            StoreError::Conflict {
                constraint: TENANT_FKEY,
                ..
            } => WebhookError::TenantGone,
            other => other.into(),
        })
}

/// Removes the session's webhook to `url`, or all of them, and brings the upstream's
/// registration in step; how many went. Naming a URL the session has no webhook for is an
/// error.
pub async fn unsubscribe(
    registrar: &Registrar<'_>,
    session: &SessionRef<'_>,
    url: Option<&str>,
) -> Result<u64, WebhookError> {
    let mut tx = registrar.begin(session).await?;
    let (tenant, mode) = (session.tenant.id, session.mode);
    let removed = subscriptions::delete(&mut tx, tenant, mode, session.name, url).await?;
    if let (Some(url), 0) = (url, removed) {
        return Err(WebhookError::NoSuchWebhook {
            url: url.to_owned(),
            session: session.name.to_owned(),
        });
    }
    let committed = registrar.commit(tx, session).await;
    list_changed(registrar, session).await;
    committed?;
    Ok(removed)
}

/// The tenant's cached subscription list is dropped before the change answers, so the
/// tenant's next call shows it whichever replica's announcement is still on its way.
async fn list_changed(registrar: &Registrar<'_>, session: &SessionRef<'_>) {
    let lists = &registrar.relay.subscriptions;
    lists.changed(session.tenant.id, session.mode).await;
}

/// Sends a delivered or failed delivery of the session again, from a fresh set of attempts,
/// and wakes the workers of every replica.
pub async fn redeliver(
    db: &Db,
    tenant: Uuid,
    mode: Mode,
    session: &str,
    id: &str,
) -> Result<Delivery, WebhookError> {
    let not_found = || WebhookError::NoSuchDelivery(id.to_owned());
    let id = Uuid::parse_str(id).map_err(|_| not_found())?;
    let mut tx = db.begin().await.map_err(StoreError::from)?;
    let Some(delivery) = deliveries::reset(&mut tx, tenant, mode, session, id).await? else {
        return Err(
            if deliveries::exists(&mut tx, tenant, mode, session, id).await? {
                WebhookError::StillPending
            } else {
                not_found()
            },
        );
    };
    outbox::notify(&mut *tx).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(delivery)
}
