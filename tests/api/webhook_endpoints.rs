//! Webhooks at the level of the best webhook services (issue 15 part 2), end to end through the
//! public API: Standard Webhooks signatures checked by the reference libraries (the Rust crate,
//! and the Python one running the README's receiver), secret rotation, one slow endpoint
//! isolated from other tenants and other endpoints, the caps on attempts in flight and on
//! pending deliveries, an endpoint disabled for failing and recovered, `Retry-After`.

use crate::helpers::{
    eventually, message_subscription, spawn_app, spawn_app_with, subscription, Hit, Receiver,
    RelayedSession, TestApp, TestTenant, DEFAULT_POLICY,
};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use wa_gateway::services::webhooks::delivery::IN_FLIGHT;
use wa_gateway::sim::webhook_signature;

const PATIENCE: Duration = Duration::from_secs(10);
const HOOKS: &str = "/v1/sessions/default/webhooks";

/// A new tenant's session `default` with the subscriptions `bodies` (answers their 201s), and
/// the gateway's ingress for it.
async fn session_with(app: &TestApp, bodies: &[Value]) -> (RelayedSession, Vec<Value>) {
    let tenant = app.tenant().await;
    session_of(app, tenant, "default", bodies).await
}

async fn session_of(
    app: &TestApp,
    tenant: TestTenant,
    name: &str,
    bodies: &[Value],
) -> (RelayedSession, Vec<Value>) {
    let upstream = app.working_session(&tenant, name).await;
    let mut created = Vec::new();
    for body in bodies {
        created.push(app.subscribe(&tenant, name, body.clone()).await);
    }
    let (token, ingress_key) = app.ingress(&upstream).await;
    let session = RelayedSession {
        tenant,
        name: name.to_owned(),
        upstream,
        token,
        ingress_key,
    };
    (session, created)
}

fn standard(url: &str, events: &[&str]) -> Value {
    json!({"webhookUrl": url, "events": events, "signing": "standard",
           "retries": {"policy": "constant", "delaySeconds": 1, "attempts": 3}})
}

/// Whether the reference Rust library (`standardwebhooks`) accepts `hit` signed with `secret`.
fn verifies(hit: &Hit, secret: &str) -> bool {
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in &hit.headers {
        headers.insert(
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(&hit.body, &headers)
        .is_ok()
}

async fn hooks(app: &TestApp, tenant: &TestTenant) -> Value {
    app.get_as(tenant, HOOKS).await.json
}

/// The session's deliveries in `status` (any with ""), newest first.
async fn deliveries(app: &TestApp, tenant: &TestTenant, status: &str) -> Vec<Value> {
    let path = match status {
        "" => format!("{HOOKS}/deliveries"),
        status => format!("{HOOKS}/deliveries?limit=200&status={status}"),
    };
    let listed = app.get_as(tenant, &path).await.json;
    listed.as_array().cloned().unwrap_or_default()
}

/// Waits until the session has `n` deliveries in `status`.
async fn until_deliveries(app: &TestApp, tenant: &TestTenant, status: &str, n: usize) -> bool {
    eventually(Duration::from_secs(15), || async {
        deliveries(app, tenant, status).await.len() == n
    })
    .await
}

/// Waits until the session's first webhook is disabled.
async fn until_disabled(app: &TestApp, tenant: &TestTenant) -> bool {
    eventually(Duration::from_secs(15), || async {
        hooks(app, tenant).await[0]["enabled"] == false
    })
    .await
}

#[tokio::test]
async fn standard_signatures_verify_with_the_reference_library_through_a_rotation() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let (s, created) = session_with(&app, &[standard(&receiver.url, &["message"])]).await;
    let created = &created[0];
    let (id, secret) = (
        created["id"].as_str().unwrap(),
        created["secret"].as_str().unwrap().to_owned(),
    );
    assert!(secret.starts_with("whsec_"), "{created}");
    assert_eq!(created["signing"], "standard");
    let listed = hooks(&app, &s.tenant).await;
    assert!(
        !listed.to_string().contains(&secret),
        "shown once: {listed}"
    );
    assert_eq!(listed[0]["signing"], "standard");
    assert_eq!(listed[0]["signed"], true);

    s.deliver(
        &app.address,
        &s.event("evt_1", "message", json!({"body": "hi"})),
    )
    .await;
    let hit = receiver.wait_for(1, PATIENCE).await.remove(0);
    assert!(verifies(&hit, &secret), "{hit:?}");
    assert!(!verifies(&hit, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
    assert_eq!(hit.header("x-webhook-hmac"), "", "one scheme per webhook");
    let ts: i64 = hit.header("webhook-timestamp").parse().unwrap();
    assert!((ts - chrono::Utc::now().timestamp()).abs() < 60, "seconds");
    assert_eq!(
        hit.header("webhook-id"),
        deliveries(&app, &s.tenant, "").await[0]["id"],
        "webhook-id is the delivery's"
    );

    // Rotated: the old and the new secret both sign for the grace period.
    let rotate = format!("{HOOKS}/{id}/rotate-secret");
    let rotated = app.post_as(&s.tenant, &rotate, json!({})).await;
    assert_eq!(rotated.status, 200, "{rotated:?}");
    let new_secret = rotated.json["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    let until: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(rotated.json["previousSecretExpiresAt"].clone()).unwrap();
    let in_a_day = chrono::Utc::now() + chrono::Duration::hours(24);
    assert!((until - in_a_day).num_seconds().abs() < 60, "{until}");
    assert!(!hooks(&app, &s.tenant)
        .await
        .to_string()
        .contains(&new_secret));
    s.deliver(&app.address, &s.event("evt_2", "message", json!({})))
        .await;
    let hit = receiver.wait_for(2, PATIENCE).await.remove(1);
    assert_eq!(hit.header("webhook-signature").split(' ').count(), 2);
    assert!(verifies(&hit, &secret) && verifies(&hit, &new_secret));

    // Rotated to a secret of the tenant's, without a grace period: only that one signs.
    let own = "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"; // 24 bytes
    let rotated = app
        .post_as(
            &s.tenant,
            &rotate,
            json!({"secret": own, "gracePeriodSeconds": 0}),
        )
        .await;
    assert_eq!(rotated.status, 200, "{rotated:?}");
    assert_eq!(rotated.json["secret"], own);
    assert!(rotated.json["previousSecretExpiresAt"].is_null());
    s.deliver(&app.address, &s.event("evt_3", "message", json!({})))
        .await;
    let hit = receiver.wait_for(3, PATIENCE).await.remove(2);
    assert!(verifies(&hit, own));
    assert!(!verifies(&hit, &new_secret) && !verifies(&hit, &secret));
}

/// The README's receiver (docs/examples/standard_webhooks_receiver.py, on the Python
/// reference library) as a child process, run by `WAGW_PYTHON` (default `python3`); `None`
/// when that lacks the library and `WAGW_REQUIRE_PYTHON_VERIFIER` is not set (scripts/test.sh
/// provides one, scripts/python-verifier.sh, and sets both).
struct PythonReceiver {
    child: tokio::process::Child,
    url: String,
}

impl PythonReceiver {
    async fn start(secret: &str) -> Option<Self> {
        let required = std::env::var("WAGW_REQUIRE_PYTHON_VERIFIER").is_ok_and(|v| v == "1");
        let python = std::env::var("WAGW_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let has_library = std::process::Command::new(&python)
            .args(["-c", "import standardwebhooks"])
            .status()
            .is_ok_and(|s| s.success());
        if !has_library {
            assert!(!required, "python3 with standardwebhooks is required");
            println!("SKIPPED the Python verifier: run scripts/python-verifier.sh");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = tokio::process::Command::new(&python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/docs/examples/standard_webhooks_receiver.py"
            ))
            .env("WEBHOOK_SECRET", secret)
            .env("PORT", port.to_string())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}/hook");
        let up = eventually(PATIENCE, || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
        assert!(up, "the Python receiver listens");
        Some(Self { child, url })
    }
}

#[tokio::test]
async fn the_readmes_python_receiver_verifies_deliveries_and_refuses_forgeries() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let Some(mut python) = PythonReceiver::start(secret).await else {
        return;
    };
    let app = spawn_app().await;
    let mut body = standard(&python.url, &["message"]);
    body["secret"] = json!(secret);
    let (s, created) = session_with(&app, &[body]).await;
    assert!(
        created[0].get("secret").is_none(),
        "a given secret is not echoed"
    );
    s.deliver(
        &app.address,
        &s.event("evt_py", "message", json!({"body": "hi"})),
    )
    .await;
    let delivered = eventually(PATIENCE, || async {
        let d = deliveries(&app, &s.tenant, "delivered").await;
        d.first().is_some_and(|d| d["lastStatusCode"] == 204)
    })
    .await;
    assert!(delivered, "the reference library accepted the delivery");
    // The same receiver refuses what the gateway did not sign.
    let forged = reqwest::Client::new()
        .post(&python.url)
        .header("webhook-id", "msg_1")
        .header(
            "webhook-timestamp",
            chrono::Utc::now().timestamp().to_string(),
        )
        .header("webhook-signature", "v1,Zm9yZ2Vk")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    python.child.start_kill().unwrap();
    let out = python.child.wait_with_output().await.unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains(r#""id": "evt_py""#), "{printed}");
}

#[tokio::test]
async fn an_event_sent_twice_reaches_each_endpoint_once_and_is_logged_once() {
    let app = spawn_app().await;
    let (plain, signed) = (Receiver::start().await, Receiver::start().await);
    let (s, _) = session_with(
        &app,
        &[
            subscription(&plain.url, &["message"], Some("k"), DEFAULT_POLICY),
            standard(&signed.url, &["message"]),
        ],
    )
    .await;
    let event = s.event("evt_twice", "message", json!({}));
    s.deliver(&app.address, &event).await;
    s.deliver(&app.address, &event).await;
    plain.wait_for(1, PATIENCE).await;
    signed.wait_for(1, PATIENCE).await;
    app.outbox_drained().await;
    assert_eq!(plain.hits().len(), 1);
    assert_eq!(signed.hits().len(), 1);
    assert_eq!(app.stored_events().await, 1, "logged once");
    assert_eq!(app.rows("webhook_deliveries").await, 2, "once per endpoint");
}

/// Posts `n` events `{prefix}_{i}` to `s` at once.
async fn burst(app: &TestApp, s: &RelayedSession, prefix: &str, event: &str, n: usize) {
    let posts = (0..n).map(|i| {
        let e = s.event(&format!("{prefix}_{i}"), event, json!({}));
        async move { s.deliver(&app.address, &e).await }
    });
    futures_util::future::join_all(posts).await;
}

#[tokio::test]
async fn a_slow_endpoint_delays_neither_another_tenant_nor_another_endpoint() {
    let app = spawn_app().await;
    let (slow, fast_b, fast_a) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    slow.answer_after(Duration::from_secs(8));
    // Tenant A: a slow endpoint for `message`, a fast one for `message.ack`, on one session.
    let (a, _) = session_with(
        &app,
        &[
            message_subscription(&slow.url),
            subscription(&fast_a.url, &["message.ack"], None, DEFAULT_POLICY),
        ],
    )
    .await;
    let (b, _) = session_with(&app, &[message_subscription(&fast_b.url)]).await;

    let per_endpoint = IN_FLIGHT.per_endpoint as usize;
    burst(&app, &a, "a", "message", 80).await;
    // The slow endpoint holds its share of attempts, and no more.
    slow.wait_for(per_endpoint, PATIENCE).await;

    let sent = Instant::now();
    b.deliver(&app.address, &b.event("b_1", "message", json!({})))
        .await;
    fast_b.wait_for(1, Duration::from_secs(5)).await;
    let other_tenant = sent.elapsed();
    let sent = Instant::now();
    a.deliver(&app.address, &a.event("a_ack", "message.ack", json!({})))
        .await;
    fast_a.wait_for(1, Duration::from_secs(5)).await;
    let other_endpoint = sent.elapsed();
    println!(
        "with 80 events to an endpoint answering after 8 s: another tenant's event took \
         {:.1} ms, another endpoint's of the same tenant {:.1} ms",
        other_tenant.as_secs_f64() * 1e3,
        other_endpoint.as_secs_f64() * 1e3
    );
    assert!(other_tenant < Duration::from_secs(1), "{other_tenant:?}");
    assert!(
        other_endpoint < Duration::from_secs(1),
        "{other_endpoint:?}"
    );
    assert_eq!(
        slow.hits().len(),
        per_endpoint,
        "at most {per_endpoint} attempts in flight to one endpoint"
    );
    assert_eq!(slow.most_in_flight(), per_endpoint);
}

#[tokio::test]
async fn one_tenant_holds_at_most_its_share_of_attempts_in_flight() {
    let (per_tenant, per_endpoint) = (
        IN_FLIGHT.per_tenant as usize,
        IN_FLIGHT.per_endpoint as usize,
    );
    // Endpoints enough that the tenant's cap binds before theirs do.
    let endpoints = per_tenant.div_ceil(per_endpoint) + 1;
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.answer_after(Duration::from_secs(4));
    let bodies: Vec<Value> = (0..endpoints)
        .map(|i| {
            let url = format!("{}/hook{i}", receiver.base);
            message_subscription(&url)
        })
        .collect();
    let (s, _) = session_with(&app, &bodies).await;
    // More deliveries for every endpoint than it may have in flight.
    burst(&app, &s, "evt", "message", per_endpoint + 4).await;
    receiver.wait_for(per_tenant, PATIENCE).await;
    // Nothing ends for 4 s: whatever more arrives meanwhile is over the cap.
    let held = eventually(Duration::from_secs(2), || async {
        receiver.hits().len() > per_tenant
    })
    .await;
    assert!(!held, "{} attempts in flight", receiver.hits().len());
    assert_eq!(receiver.most_in_flight(), per_tenant);
    let most_to_one = (0..endpoints)
        .map(|i| receiver.hits_at(&format!("/hook{i}")).len())
        .max()
        .unwrap();
    assert!(most_to_one <= per_endpoint, "{most_to_one}");
}

#[tokio::test]
async fn past_the_pending_cap_the_oldest_deliveries_are_dropped_and_recorded() {
    let app = spawn_app_with(|vars| {
        vars.insert("WAGW_WEBHOOK_MAX_PENDING_PER_TENANT".into(), "5".into());
    })
    .await;
    // A receiver that asks for an hour's pause: everything stays pending.
    let receiver = Receiver::answering(503).await;
    receiver.retry_after("3600");
    let (s, _) = session_with(
        &app,
        &[subscription(
            &receiver.url,
            &["message"],
            None,
            ("constant", 1, 5),
        )],
    )
    .await;
    for i in 0..12 {
        s.deliver(
            &app.address,
            &s.event(&format!("evt_{i:02}"), "message", json!({})),
        )
        .await;
    }
    assert!(
        until_deliveries(&app, &s.tenant, "pending", 5).await,
        "at most 5 pending"
    );
    let failed = deliveries(&app, &s.tenant, "failed").await;
    let dropped: Vec<&str> = failed
        .iter()
        .map(|d| d["eventId"].as_str().unwrap())
        .collect();
    assert_eq!(dropped.len(), 7, "{dropped:?}");
    // The oldest go first (an attempt in flight when the bound is kept is passed over).
    assert!(
        dropped.contains(&"evt_00") && !dropped.contains(&"evt_11"),
        "{dropped:?}"
    );
    let (status, all) = app
        .admin(
            Method::GET,
            &format!(
                "/admin/v1/webhooks/deliveries?tenant={}&status=failed",
                s.tenant.id
            ),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        all[0]["lastError"]
            .as_str()
            .unwrap()
            .contains("more than 5"),
        "{all}"
    );
}

#[tokio::test]
async fn an_endpoint_failing_too_long_is_disabled_logged_enabled_and_recovered() {
    let app = spawn_app_with(|vars| {
        vars.insert("WAGW_WEBHOOK_DISABLE_AFTER_SECS".into(), "2".into());
    })
    .await;
    let receiver = Receiver::answering(500).await;
    let (s, created) = session_with(
        &app,
        &[subscription(
            &receiver.url,
            &["message"],
            Some("k"),
            ("constant", 1, 20),
        )],
    )
    .await;
    let id = created[0]["id"].as_str().unwrap().to_owned();
    let started = chrono::Utc::now();
    s.deliver(&app.address, &s.event("evt_1", "message", json!({})))
        .await;
    assert!(
        until_disabled(&app, &s.tenant).await,
        "disabled after failing for 2 s"
    );
    let hook = &hooks(&app, &s.tenant).await[0];
    assert!(
        hook["disabledReason"].as_str().unwrap().contains("failed"),
        "{hook}"
    );
    assert!(!hook["failingSince"].is_null());
    let tries = receiver.hits().len();
    assert!((3..=5).contains(&tries), "{tries} attempts");

    // The tenant's log has the event, in the session's mode; the audit log has the entry.
    let logged: Vec<(String, String, Vec<u8>)> = sqlx::query_as(
        "SELECT event, mode, body FROM webhook_events WHERE event = 'webhook.disabled'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].1, "live");
    let envelope: Value = serde_json::from_slice(&logged[0].2).unwrap();
    assert_eq!(envelope["session"], "default");
    assert_eq!(envelope["payload"]["webhookId"], id.as_str());
    assert_eq!(envelope["payload"]["webhookUrl"], receiver.url.as_str());
    let (status, audit) = app
        .admin(Method::GET, "/admin/v1/audit?action=webhook.disable", None)
        .await;
    assert_eq!(status, 200, "{audit}");
    assert_eq!(audit["items"][0]["target_id"], id.as_str(), "{audit}");
    assert_eq!(audit["items"][0]["admin_username"], "gateway");

    // Disabled: an event arriving now is not attempted; it ends failed.
    s.deliver(&app.address, &s.event("evt_2", "message", json!({})))
        .await;
    assert!(
        until_deliveries(&app, &s.tenant, "failed", 2).await,
        "both deliveries end failed"
    );
    assert_eq!(
        receiver.hits().len(),
        tries,
        "nothing sent to a disabled endpoint"
    );

    // Enabled and recovered: both events arrive, once.
    receiver.answer_with(200);
    let enabled = app
        .post_as(&s.tenant, &format!("{HOOKS}/{id}/enable"), json!({}))
        .await;
    assert_eq!(enabled.status, 200, "{enabled:?}");
    assert_eq!(enabled.json["enabled"], true);
    assert!(enabled.json["failingSince"].is_null());
    let since = (started - chrono::Duration::minutes(1)).to_rfc3339();
    let recover = format!("{HOOKS}/recover");
    let recovered = app
        .post_as(&s.tenant, &recover, json!({"since": since}))
        .await;
    assert_eq!(recovered.status, 202, "{recovered:?}");
    assert_eq!(recovered.json["recovered"], 2);
    let arrived = eventually(PATIENCE, || async {
        let ids = receiver.event_ids();
        ids[tries..].contains(&"evt_1".to_owned()) && ids[tries..].contains(&"evt_2".to_owned())
    })
    .await;
    assert!(arrived, "{:?}", receiver.event_ids());
    app.outbox_drained().await;
    assert_eq!(receiver.hits().len(), tries + 2);
    // Once a minute per session.
    let again = app
        .post_as(&s.tenant, &recover, json!({"since": since}))
        .await;
    assert_eq!(again.status, 429, "{again:?}");
    let wait = again.retry_after().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
}

#[tokio::test]
async fn a_410_disables_the_endpoint_at_once() {
    let app = spawn_app().await;
    let receiver = Receiver::answering(410).await;
    let (s, _) = session_with(&app, &[message_subscription(&receiver.url)]).await;
    s.deliver(&app.address, &s.event("evt_1", "message", json!({})))
        .await;
    assert!(until_disabled(&app, &s.tenant).await);
    assert!(hooks(&app, &s.tenant).await[0]["disabledReason"]
        .as_str()
        .unwrap()
        .contains("410"));
}

#[tokio::test]
async fn retry_after_from_the_receiver_spaces_the_retries() {
    let app = spawn_app().await;
    let receiver = Receiver::answering(503).await;
    receiver.retry_after("3");
    let (s, _) = session_with(
        &app,
        &[subscription(
            &receiver.url,
            &["message"],
            Some("k"),
            ("constant", 1, 3),
        )],
    )
    .await;
    s.deliver(&app.address, &s.event("evt_1", "message", json!({})))
        .await;
    let hits = receiver.wait_for(2, PATIENCE).await;
    let gap = hits[1].at - hits[0].at;
    assert!(
        gap >= Duration::from_millis(2900) && gap < Duration::from_secs(5),
        "{gap:?}"
    );
    assert_eq!(
        hits[0].header("x-webhook-hmac"),
        webhook_signature("k", &hits[0].body)
    );
}
