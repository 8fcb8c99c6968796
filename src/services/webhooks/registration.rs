//! The gateway's own webhook on each upstream session: one ingress URL (with an unguessable
//! token) and one signing key per upstream session, registered for the union of the events
//! the session's subscriptions need, and kept in step with them.
//!
//! Every change to a session's subscriptions is made under a transaction-scoped advisory lock
//! ([`Registrar::begin`]), so concurrent changes (on any replica) are applied one after the
//! other. The upstream is told once that transaction has committed, never while it is open:
//! a registration can take as long as the upstream's timeout. What the upstream was sent is
//! then recorded in `webhook_ingress`; a change committed meanwhile is sent in turn, and
//! whatever is left out of step (a failed call, a replica gone) the reconciler finds.

use crate::db::Db;
use crate::domain::{Mode, Quota, Tenant, TenantStatus, UpstreamSession};
use crate::services::quota::Quotas;
use crate::services::upstream::{Gateway, Payer, UpstreamCall, Upstreams};
use crate::services::webhooks::error::WebhookError;
use crate::services::webhooks::relay::Relay;
use crate::services::webhooks::signing::random_secret;
use crate::store::webhooks::ingress::{self, Registration};
use crate::store::webhooks::subscriptions::needed_events;
use crate::store::StoreError;
use actix_web::http::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::{PgConnection, Postgres, Transaction};
use std::sync::Arc;

/// The route label the registration calls carry in metrics.
const ROUTE: &str = "/v1/sessions/{session}/webhooks";
/// How often one change sends again because more changes committed while it was sending;
/// past that the reconciler (or the later changes' own calls) finish the work.
const MAX_ROUNDS: usize = 3;

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

/// What the upstream must be told: the session's ingress, and the events its subscriptions
/// need now (`None`: none, so the registration goes).
struct Change {
    registration: Registration,
    needed: Option<Vec<String>>,
}

impl Registrar<'_> {
    /// The transaction a change to the session's subscriptions is made in, holding the
    /// session's lock. The session's ingress exists (committed) before the upstream hears of
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

    /// Commits the change made in `tx` (from [`Self::begin`]), then brings the upstream's
    /// registration in step with it. A call that reaches the upstream is admitted against the
    /// tenant's quotas and the organisation's budget like any other; nothing to change means
    /// no call and nothing spent.
    pub async fn commit(
        &self,
        mut tx: Transaction<'static, Postgres>,
        session: &SessionRef<'_>,
    ) -> Result<(), WebhookError> {
        let change = pending_change(&mut tx, session).await?;
        tx.commit().await.map_err(StoreError::from)?;
        match change {
            Some(change) => self.bring_in_step(session, change).await,
            None => Ok(()),
        }
    }

    /// Brings a session found out of step in step (the reconciler's work).
    pub async fn resync(&self, session: &SessionRef<'_>) -> Result<(), WebhookError> {
        let tx = self.begin(session).await?;
        self.commit(tx, session).await
    }

    async fn bring_in_step(
        &self,
        session: &SessionRef<'_>,
        mut change: Change,
    ) -> Result<(), WebhookError> {
        let upstream = session.upstream.as_str();
        for _ in 0..MAX_ROUNDS {
            self.tell_upstream(session, &change).await?;
            let mut tx = self.db.begin().await.map_err(StoreError::from)?;
            ingress::lock_session(&mut tx, upstream).await?;
            ingress::record_registered(&mut tx, upstream, change.needed.as_deref()).await?;
            let needed_now =
                needed_events(&mut tx, session.tenant.id, session.mode, session.name).await?;
            tx.commit().await.map_err(StoreError::from)?;
            tracing::info!(
                session = session.name,
                events = ?change.needed,
                "webhook registration with the upstream brought in step"
            );
            if needed_now == change.needed {
                return Ok(());
            }
            change.needed = needed_now;
        }
        Ok(())
    }

    /// One registration call: the session's ingress for the events needed, or its removal.
    async fn tell_upstream(
        &self,
        session: &SessionRef<'_>,
        change: &Change,
    ) -> Result<(), WebhookError> {
        let (method, operation, body) = self.request(change);
        let path = format!("/v1/sessions/{}/webhooks", session.upstream.as_str());
        let call = UpstreamCall::own(method.clone(), path, ROUTE, Some(&body));
        let client = self.upstreams.of(session.mode);
        let admitted = Gateway::new(client, self.quotas)
            .admit(Payer::of(session.mode, session.tenant), operation)
            .await
            .map_err(WebhookError::Admission)?;
        let mut answer = admitted.send(&call).await?;
        let status = answer.status();
        // Removing a registration from a session the upstream no longer has is done already.
        if status.is_success() || (method == Method::DELETE && status == StatusCode::NOT_FOUND) {
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

    fn request(&self, change: &Change) -> (Method, &'static str, Value) {
        let url = self.relay.ingress_url(&change.registration.token);
        match &change.needed {
            Some(events) => (
                Method::POST,
                "addWebhook",
                json!({
                    "webhookUrl": url,
                    "events": events,
                    "hmacKey": change.registration.hmac_key,
                    // The upstream retries in memory only; our ingress is rarely down for long.
                    "retries": {"policy": "exponential", "delaySeconds": 2, "attempts": 5},
                }),
            ),
            None => (
                Method::DELETE,
                "deleteWebhooks",
                json!({ "webhookUrl": url }),
            ),
        }
    }
}

/// What the upstream must be told, as the caller's transaction leaves the subscriptions;
/// `None` when its registration already matches.
async fn pending_change(
    conn: &mut PgConnection,
    session: &SessionRef<'_>,
) -> Result<Option<Change>, WebhookError> {
    let needed = needed_events(conn, session.tenant.id, session.mode, session.name).await?;
    let registration = ingress::registration(conn, session.upstream.as_str()).await?;
    Ok((needed != registration.events).then_some(Change {
        registration,
        needed,
    }))
}

/// Sessions whose upstream registration is not what their subscriptions need: a session
/// created again under a known name (a new upstream session), or a change that failed half
/// way.
pub async fn out_of_step(db: &Db) -> Result<Vec<OutOfStep>, WebhookError> {
    let rows = ingress::out_of_step(db).await?;
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
