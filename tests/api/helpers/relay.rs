//! The webhook relay as a tenant and the upstream see it, set up through the public API only:
//! a tenant made by the admin API, its session created through the gateway (which forwards to
//! the simulator), subscriptions through the tenant's webhook routes, and the gateway's ingress
//! (token and signing key) as the upstream learnt it from the gateway's registration call.

use super::{eventually, TestApp, TestTenant};
use serde_json::{json, Value};
use std::time::Duration;
use wa_gateway::sim::webhook_signature;

/// The retry policy most tests subscribe with: `(policy, delaySeconds, attempts)`.
pub const DEFAULT_POLICY: (&str, i32, i32) = ("exponential", 2, 5);

/// The body of `POST /v1/sessions/{session}/webhooks`, with one custom header `X-Token: abc`.
/// A subscription to `message` at `url`, unsigned, with the default retries: what most
/// relay tests need.
pub fn message_subscription(url: &str) -> Value {
    subscription(url, &["message"], None, DEFAULT_POLICY)
}

pub fn subscription(
    url: &str,
    events: &[&str],
    hmac_key: Option<&str>,
    (policy, delay, attempts): (&str, i32, i32),
) -> Value {
    let mut body = json!({
        "webhookUrl": url,
        "events": events,
        "retries": {"policy": policy, "delaySeconds": delay, "attempts": attempts},
        "customHeaders": [{"name": "X-Token", "value": "abc"}],
    });
    if let Some(key) = hmac_key {
        body["hmacKey"] = json!(key);
    }
    body
}

/// A tenant's WORKING session whose events the gateway relays.
pub struct RelayedSession {
    pub tenant: TestTenant,
    /// The tenant's name for the session.
    pub name: String,
    /// The upstream's name for it.
    pub upstream: String,
    /// The token in the gateway's ingress URL.
    pub token: String,
    /// The key the upstream signs events with.
    pub ingress_key: String,
}

impl RelayedSession {
    /// A new tenant's session `default` with `subscriptions` registered (the gateway
    /// registered its ingress with the upstream when it created the session).
    pub async fn start(app: &TestApp, subscriptions: &[Value]) -> Self {
        let tenant = app.tenant().await;
        Self::start_for(app, tenant, subscriptions).await
    }

    pub async fn start_for(app: &TestApp, tenant: TestTenant, subscriptions: &[Value]) -> Self {
        let name = "default".to_owned();
        let upstream = app.working_session(&tenant, &name).await;
        for body in subscriptions {
            app.subscribe(&tenant, &name, body.clone()).await;
        }
        let (token, ingress_key) = app.ingress(&upstream).await;
        Self {
            tenant,
            name,
            upstream,
            token,
            ingress_key,
        }
    }

    /// An event as the upstream posts it for this session.
    pub fn event(&self, id: &str, name: &str, payload: Value) -> Value {
        json!({
            "id": id, "timestamp": chrono::Utc::now().timestamp_millis(), "event": name,
            "session": self.upstream, "metadata": {"user.id": "123"},
            "me": {"id": "71111111111@c.us", "pushName": "~"},
            "payload": payload, "engine": "WEBJS",
            "environment": {"version": "2026.7.1", "tier": "PLUS"}
        })
    }

    /// Posts `event` to the gateway at `base` as the upstream does; it must be accepted.
    pub async fn deliver(&self, base: &str, event: &Value) {
        let res = post_signed(base, &self.token, &self.ingress_key, event).await;
        assert_eq!(res.status(), 200, "{:?}", res.text().await);
    }
}

/// Posts `event` to the gateway's ingress `token` at `base`, signed with `key` as the upstream
/// signs (UPSTREAM.md scheme).
pub async fn post_signed(base: &str, token: &str, key: &str, event: &Value) -> reqwest::Response {
    let body = serde_json::to_vec(event).unwrap();
    reqwest::Client::new()
        .post(format!("{base}/webhooks/ingress/{token}"))
        .header("content-type", "application/json")
        .header("x-webhook-hmac", webhook_signature(key, &body))
        .header("x-webhook-hmac-algorithm", "sha512")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// The calls of `log` but the gateway's own ingress registrations, which it makes for every
/// session it creates (`POST /v1/sessions/{upstream}/webhooks`).
pub fn without_registrations(log: Vec<Value>) -> Vec<Value> {
    log.into_iter()
        .filter(|c| {
            let path = c["path"].as_str().unwrap_or_default();
            !(c["method"] == "POST"
                && path.starts_with("/v1/sessions/")
                && path.ends_with("/webhooks"))
        })
        .collect()
}

/// The registration calls the simulator received for its session `upstream`, oldest first.
pub fn registrations<'a>(log: &'a [Value], upstream: &str) -> Vec<&'a Value> {
    let path = format!("/v1/sessions/{upstream}/webhooks");
    log.iter().filter(|e| e["path"] == path.as_str()).collect()
}

impl TestApp {
    /// Subscribes the tenant's `session` with `body`; answers the 201's JSON.
    pub async fn subscribe(&self, tenant: &TestTenant, session: &str, body: Value) -> Value {
        let created = self
            .post_as(tenant, &format!("/v1/sessions/{session}/webhooks"), body)
            .await;
        assert_eq!(created.status, 201, "subscribing: {created:?}");
        created.json
    }

    /// The gateway's ingress for `upstream` as the upstream knows it: the token of the
    /// registered URL and the signing key, from the gateway's last registration call.
    pub async fn ingress(&self, upstream: &str) -> (String, String) {
        let log = self.sim_log().await;
        let last = registrations(&log, upstream)
            .into_iter()
            .rfind(|e| e["method"] == "POST")
            .expect("the gateway registered its ingress with the upstream");
        let body: Value = serde_json::from_str(last["body"].as_str().unwrap()).unwrap();
        let url = body["webhookUrl"].as_str().unwrap();
        let token = url.rsplit('/').next().unwrap().to_owned();
        (token, body["hmacKey"].as_str().unwrap().to_owned())
    }

    /// How many events the gateway stored, but the sessions' status changes: the simulator
    /// sends those for every session, whose ingress the gateway registers for every event.
    pub async fn stored_events(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM webhook_events WHERE event <> 'session.status'")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Waits until the simulator has no webhook delivery pending: every event it fired (the
    /// sessions' status changes among them) has reached the gateway's ingress.
    pub async fn sim_delivered(&self) {
        let url = format!("{}/_sim/deliveries", self.sim().url());
        let done = eventually(Duration::from_secs(30), || async {
            let pending: Value = self
                .client
                .get(&url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            pending["pending"] == 0
        })
        .await;
        assert!(done, "the simulator delivered every event");
    }

    /// Waits until the outbox holds no pending delivery: every attempt due has been made and
    /// nothing is waiting for a retry. What has not arrived by then never will.
    pub async fn outbox_drained(&self) {
        let drained = eventually(Duration::from_secs(30), || async {
            let pending: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'",
            )
            .fetch_one(&self.pool)
            .await
            .unwrap();
            pending == 0
        })
        .await;
        assert!(drained, "the outbox drains");
    }
}
