//! The gateway's own webhook on each upstream session: one ingress URL (with an unguessable
//! token) and one signing key per upstream session, registered for every event (`*`) when the
//! session is created or adopted, so the tenant's event log has all of its events whether or
//! not a subscription wants them; an event no subscription wants is logged and delivered to
//! nobody.
//!
//! A registration is made under a transaction-scoped advisory lock ([`Registrar::begin`]), so
//! concurrent changes to a session (on any replica) are applied one after the other. The
//! upstream is told once that transaction has committed, never while it is open: a
//! registration can take as long as the upstream's timeout. What the upstream was sent is then
//! recorded in `webhook_ingress`; whatever is left out of step (a failed call, a replica gone,
//! a session from before the event log) the reconciler finds.

use crate::db::Db;
use crate::domain::{Mode, Quota, Tenant, TenantStatus, UpstreamSession};
use crate::services::quota::Quotas;
use crate::services::upstream::{Gateway, Payer, UpstreamCall, Upstreams};
use crate::services::webhooks::error::WebhookError;
use crate::services::webhooks::relay::Relay;
use crate::services::webhooks::signing::random_secret;
use crate::store::webhooks::ingress::{self, Registration};
use crate::store::StoreError;
use actix_web::http::Method;
use serde_json::{json, Value};
use sqlx::{PgConnection, Postgres, Transaction};
use std::sync::Arc;

/// The route label the registration calls carry in metrics.
const ROUTE: &str = "/v1/sessions/{session}/webhooks";
/// What every session's ingress is registered for: every event the upstream sends.
pub const ALL_EVENTS: &str = "*";

/// The events of a registration in step, as `webhook_ingress.events` records them.
pub fn registered_events() -> Vec<String> {
    vec![ALL_EVENTS.to_owned()]
}

/// What bringing a session's registration in step takes.
pub struct Registrar<'a> {
    pub db: &'a Db,
    /// A test session is registered with the replica's simulator, never the hosted API.
    pub upstreams: Upstreams<'a>,
    pub quotas: &'a Arc<Quotas>,
    pub relay: &'a Relay,
}

/// A session whose registration is brought in step, with the tenant whose quotas pay for it.
pub struct SessionRef<'a> {
    pub tenant: &'a Tenant,
    /// Test sessions' subscriptions are kept apart from live ones of the same name.
    pub mode: Mode,
    /// The tenant's name for it, which its subscriptions are kept under.
    pub name: &'a str,
    pub upstream: &'a UpstreamSession,
}

/// A session the reconciler must bring in step.
pub struct OutOfStep {
    pub tenant: Tenant,
    pub mode: Mode,
    pub name: String,
    pub upstream: UpstreamSession,
}

/// What the upstream must be told: the session's ingress (for every event).
struct Change {
    registration: Registration,
}

impl Registrar<'_> {
    /// The transaction a change to the session's webhooks is made in, holding the session's
    /// lock. The session's ingress exists (committed) before the upstream hears of
    /// it, so an event the upstream sends at once is recognised.
    pub async fn begin(
        &self,
        session: &SessionRef<'_>,
    ) -> Result<Transaction<'static, Postgres>, WebhookError> {
        let upstream = session.upstream.as_str();
        ingress::ensure(self.db, upstream, &random_secret(), &random_secret()).await?;
        let mut tx = self.db.begin().await.map_err(StoreError::from)?;
        ingress::lock_session(&mut tx, upstream).await?;
        Ok(tx)
    }

    /// Commits the change made in `tx` (from [`Self::begin`]), then registers the session's
    /// ingress with the upstream unless it is already. The call is the gateway's own: it
    /// spends the organisation's budget (nothing for a test session), not the tenant's month;
    /// a registration already in step means no call and nothing spent.
    pub async fn commit(
        &self,
        mut tx: Transaction<'static, Postgres>,
        session: &SessionRef<'_>,
    ) -> Result<(), WebhookError> {
        let change = pending_change(&mut tx, session).await?;
        tx.commit().await.map_err(StoreError::from)?;
        let Some(change) = change else {
            return Ok(());
        };
        // The upstream may post the session's first events before the answer comes back.
        self.relay.tokens.learn(&change.registration.token);
        self.bring_in_step(session, change).await
    }

    /// Registers a session's ingress unless it is already: a session just created or adopted
    /// (before its creation answers), and sessions the reconciler finds out of step.
    pub async fn resync(&self, session: &SessionRef<'_>) -> Result<(), WebhookError> {
        let tx = self.begin(session).await?;
        self.commit(tx, session).await
    }

    async fn bring_in_step(
        &self,
        session: &SessionRef<'_>,
        change: Change,
    ) -> Result<(), WebhookError> {
        let upstream = session.upstream.as_str();
        self.tell_upstream(session, &change).await?;
        let mut tx = self.db.begin().await.map_err(StoreError::from)?;
        ingress::lock_session(&mut tx, upstream).await?;
        ingress::record_registered(&mut tx, upstream, Some(&registered_events())).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(
            session = session.name,
            "the session's ingress is registered with the upstream for every event"
        );
        Ok(())
    }

    /// One registration call: the session's ingress, for every event.
    async fn tell_upstream(
        &self,
        session: &SessionRef<'_>,
        change: &Change,
    ) -> Result<(), WebhookError> {
        let body = self.request(change);
        let path = format!("/v1/sessions/{}/webhooks", session.upstream.as_str());
        let call = UpstreamCall::own(Method::POST, path, ROUTE, Some(&body));
        let client = self.upstreams.of(session.mode);
        let admitted = Gateway::new(client, self.quotas)
            .admit(Payer::own(session.mode, session.tenant), "addWebhook")
            .await
            .map_err(WebhookError::Admission)?;
        let mut answer = admitted.send(&call).await?;
        let status = answer.status();
        if status.is_success() {
            return Ok(());
        }
        let message = answer
            .read_body()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| "the upstream refused the webhook registration".to_owned());
        let status = status.as_u16();
        Err(if answer.status().is_client_error() {
            WebhookError::Refused { status, message }
        } else {
            WebhookError::UpstreamFailed { status, message }
        })
    }

    fn request(&self, change: &Change) -> Value {
        json!({
            "webhookUrl": self.relay.ingress_url(&change.registration.token),
            "events": registered_events(),
            "hmacKey": change.registration.hmac_key,
            // The upstream retries in memory only; our ingress is rarely down for long.
            "retries": {"policy": "exponential", "delaySeconds": 2, "attempts": 5},
        })
    }
}

/// What the upstream must be told; `None` when the session's ingress is registered already.
async fn pending_change(
    conn: &mut PgConnection,
    session: &SessionRef<'_>,
) -> Result<Option<Change>, WebhookError> {
    let registration = ingress::registration(conn, session.upstream.as_str()).await?;
    Ok((registration.events != Some(registered_events())).then_some(Change { registration }))
}

/// Sessions whose ingress is not registered: a registration that failed (the upstream away,
/// a replica gone half way), or a session from before every session was registered.
pub async fn out_of_step(db: &Db) -> Result<Vec<OutOfStep>, WebhookError> {
    let rows = ingress::out_of_step(db, &registered_events()).await?;
    Ok(rows
        .into_iter()
        .map(|r| OutOfStep {
            tenant: Tenant {
                id: r.tenant_id,
                name: r.tenant_name,
                plan: r.plan,
                // Only active tenants are selected.
                status: TenantStatus::Active,
                quota: Quota {
                    monthly_requests: r.monthly_requests,
                    requests_per_second: r.requests_per_second,
                    max_sessions: r.max_sessions,
                },
                created_at: r.tenant_created_at,
            },
            mode: r.mode,
            name: r.session_name,
            upstream: UpstreamSession::from_db(r.upstream_name),
        })
        .collect())
}
