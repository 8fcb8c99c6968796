//! The webhook relay end to end: a signed event posted to the gateway's ingress (as the
//! upstream does) reaches a receiver started by the test, once, signed, with the tenant's own
//! session name; retries, isolation, replicas, a SIGKILL and the address check.
//!
//! Everything is set up through the public API (helpers/relay.rs): the tenant by the admin API,
//! its session through the gateway, subscriptions through the tenant's webhook routes; events
//! are signed with the key the gateway registered with the upstream, exactly as the upstream
//! signs them.

use crate::helpers::eventually;
use crate::helpers::{
    message_subscription, post_signed, registrations, spawn_app, spawn_replica, spawn_replica_with,
    subscription, GatewayProcess, Hit, Receiver, RelayedSession, TestApp, TestTenant,
    DEFAULT_POLICY, UPSTREAM_KEY,
};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;
use wa_gateway::sim::webhook_signature;

const PATIENCE: Duration = Duration::from_secs(10);

fn event_ids(hits: &[Hit]) -> Vec<String> {
    hits.iter()
        .map(|h| h.json()["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A session of a new tenant subscribed to `events` at `receiver`, signed with `hmac_key`.
async fn relayed(
    app: &TestApp,
    receiver: &Receiver,
    events: &[&str],
    hmac_key: Option<&str>,
) -> RelayedSession {
    RelayedSession::start(
        app,
        &[subscription(
            &receiver.url,
            events,
            hmac_key,
            DEFAULT_POLICY,
        )],
    )
    .await
}

/// How many rows the delivery outbox holds in `status`.
async fn deliveries_in(app: &TestApp, status: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE status = $1")
        .bind(status)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// A delivery of `s`'s: the tenant's session name, the upstream's metadata, nothing of the
/// gateway's own, signed with `key` and headed as the upstream heads its deliveries.
fn assert_relayed_like_the_upstream_sends(hit: &Hit, s: &RelayedSession, key: &str) {
    let body = hit.json();
    assert_eq!(body["session"], "default");
    assert_eq!(body["metadata"]["user.id"], "123");
    let raw = String::from_utf8(hit.body.clone()).unwrap();
    assert!(
        !raw.contains(&s.upstream),
        "the upstream name leaked: {raw}"
    );
    assert!(!raw.contains(&s.ingress_key) && !raw.contains(&s.token));
    // A receiver written for the upstream verifies ours unchanged.
    assert_eq!(
        hit.header("x-webhook-hmac"),
        webhook_signature(key, &hit.body)
    );
    assert_eq!(hit.header("x-webhook-hmac-algorithm"), "sha512");
    assert_eq!(hit.header("x-token"), "abc");
    assert!(!hit.header("x-webhook-request-id").is_empty());
    let ts: i64 = hit.header("x-webhook-timestamp").parse().unwrap();
    assert!((ts - chrono::Utc::now().timestamp_millis()).abs() < 60_000);
}

#[tokio::test]
async fn an_event_arrives_once_signed_and_with_the_tenants_session_name() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let s = relayed(
        &app,
        &receiver,
        &["message", "message.any"],
        Some("my-secret-key"),
    )
    .await;

    let incoming = json!({"id": "false_1@c.us_AAA", "fromMe": false, "body": "hi"});
    let outgoing = json!({"id": "true_1@c.us_BBB", "fromMe": true, "body": "yo"});
    let first = s.event("evt_1", "message", incoming.clone());
    s.deliver(&app.address, &first).await;
    // The same incoming message as `message.any`: the subscription has `message`, so not again.
    s.deliver(&app.address, &s.event("evt_2", "message.any", incoming))
        .await;
    // An outgoing one only comes as `message.any`.
    s.deliver(&app.address, &s.event("evt_3", "message.any", outgoing))
        .await;
    // The upstream retrying an event we already acknowledged.
    s.deliver(&app.address, &first).await;

    receiver.wait_for(2, PATIENCE).await;
    app.outbox_drained().await;
    let hits = receiver.hits();
    assert_eq!(
        hits.len(),
        2,
        "exactly two deliveries: {:?}",
        event_ids(&hits)
    );
    let mut ids = event_ids(&hits);
    ids.sort();
    assert_eq!(ids, vec!["evt_1", "evt_3"]);

    for hit in &hits {
        assert_relayed_like_the_upstream_sends(hit, &s, "my-secret-key");
    }
    assert_ne!(
        hits[0].header("x-webhook-request-id"),
        hits[1].header("x-webhook-request-id")
    );
    assert_eq!(
        app.stored_events().await,
        3,
        "the repeated event was stored once"
    );
    // The outbox gauge follows on the worker's next round.
    eventually(PATIENCE, || async {
        app.get("/metrics")
            .await
            .text()
            .await
            .unwrap()
            .contains("wagw_webhook_outbox_depth 0")
    })
    .await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"wagw_webhook_deliveries_total{outcome="delivered"} 2"#),
        "{metrics}"
    );
    assert!(metrics.contains("wagw_webhook_attempt_duration_seconds_count"));
    assert!(metrics.contains("wagw_webhook_outbox_depth 0"));
}

#[tokio::test]
async fn ingress_refuses_anything_not_signed_with_the_sessions_key() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let s = relayed(&app, &receiver, &["message"], None).await;
    let e = s.event("evt_1", "message", json!({"fromMe": false}));

    let wrong_key = post_signed(&app.address, &s.token, "not-the-key", &e).await;
    assert_eq!(wrong_key.status(), 401);
    let body: Value = wrong_key.json().await.unwrap();
    assert_eq!(body["statusCode"], 401);
    assert_eq!(body["error"], "Unauthorized");

    let ingress = app.url(&format!("/webhooks/ingress/{}", s.token));
    let unsigned = app.client.post(&ingress).json(&e).send().await.unwrap();
    assert_eq!(unsigned.status(), 401);
    let unknown_token = post_signed(&app.address, "nope", &s.ingress_key, &e).await;
    assert_eq!(unknown_token.status(), 401);
    // A valid signature over other bytes than those sent.
    let tampered = app
        .client
        .post(&ingress)
        .header("x-webhook-hmac", webhook_signature(&s.ingress_key, b"{}"))
        .json(&e)
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), 401);

    assert_eq!(app.stored_events().await, 0);
    app.outbox_drained().await;
    assert!(receiver.hits().is_empty());
}

#[tokio::test]
async fn a_tenant_never_receives_another_tenants_events() {
    let app = spawn_app().await;
    let (ra, rb) = (Receiver::start().await, Receiver::start().await);
    let a = relayed(&app, &ra, &["message"], None).await;
    let b = relayed(&app, &rb, &["message"], None).await;

    for i in 0..3 {
        a.deliver(
            &app.address,
            &a.event(&format!("a_{i}"), "message", json!({})),
        )
        .await;
    }
    b.deliver(&app.address, &b.event("b_0", "message", json!({})))
        .await;
    // B's token with A's key: refused, nothing crosses over.
    let crossed = post_signed(
        &app.address,
        &b.token,
        &a.ingress_key,
        &b.event("x", "message", json!({})),
    )
    .await;
    assert_eq!(crossed.status(), 401);

    let got_a = ra.wait_for(3, PATIENCE).await;
    let got_b = rb.wait_for(1, PATIENCE).await;
    app.outbox_drained().await;
    let mut ids_a = event_ids(&ra.hits());
    ids_a.sort();
    assert_eq!(ids_a, vec!["a_0", "a_1", "a_2"]);
    assert_eq!(event_ids(&rb.hits()), vec!["b_0"]);
    assert!(got_a
        .iter()
        .chain(&got_b)
        .all(|h| h.json()["session"] == "default"));
}

#[tokio::test]
async fn a_receiver_failing_twice_gets_the_event_on_the_third_attempt_at_the_policys_spacing() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.fail_first(2);
    let s = RelayedSession::start(
        &app,
        &[subscription(
            &receiver.url,
            &["message"],
            Some("k"),
            ("exponential", 1, 5),
        )],
    )
    .await;
    s.deliver(&app.address, &s.event("evt_1", "message", json!({})))
        .await;

    let hits = receiver.wait_for(3, Duration::from_secs(15)).await;
    assert_eq!(hits.len(), 3);
    // Exponential from 1 s with ~20% jitter: about 1 s, then about 2 s (plus a little slack for
    // scheduling).
    let gap1 = hits[1].at - hits[0].at;
    let gap2 = hits[2].at - hits[1].at;
    assert!(
        gap1 >= Duration::from_millis(790) && gap1 <= Duration::from_millis(1700),
        "{gap1:?}"
    );
    assert!(
        gap2 >= Duration::from_millis(1590) && gap2 <= Duration::from_millis(2900),
        "{gap2:?}"
    );
    // Every attempt carries the same bytes and signature, and its own request id.
    assert!(hits.iter().all(|h| h.body == hits[0].body));
    let request_ids: HashSet<_> = hits
        .iter()
        .map(|h| h.header("x-webhook-request-id").to_owned())
        .collect();
    assert_eq!(request_ids.len(), 3);

    let delivered = eventually(Duration::from_secs(5), || async {
        let row: (String, i32, Option<i32>) =
            sqlx::query_as("SELECT status, attempts, last_status FROM webhook_deliveries")
                .fetch_one(&app.pool)
                .await
                .unwrap();
        row == ("delivered".to_owned(), 3, Some(200))
    })
    .await;
    assert!(
        delivered,
        "the delivery is recorded as delivered on attempt 3"
    );
    app.outbox_drained().await;
    assert_eq!(receiver.hits().len(), 3, "nothing after the success");
}

#[tokio::test]
async fn a_4xx_stops_at_once_and_exhausted_deliveries_are_kept_as_failed() {
    let app = spawn_app().await;
    let (gone, down) = (
        Receiver::answering(410).await,
        Receiver::answering(500).await,
    );
    let s = RelayedSession::start(
        &app,
        &[
            subscription(&gone.url, &["message"], None, ("constant", 1, 5)),
            subscription(&down.url, &["message"], None, ("constant", 1, 2)),
        ],
    )
    .await;
    s.deliver(&app.address, &s.event("evt_1", "message", json!({})))
        .await;

    let settled = eventually(PATIENCE, || async {
        deliveries_in(&app, "failed").await == 2
    })
    .await;
    assert!(settled, "both deliveries end failed");
    assert_eq!(gone.hits().len(), 1, "a 410 is not retried");
    assert_eq!(
        down.hits().len(),
        2,
        "a 500 is retried until the 2 attempts are spent"
    );
    let rows: Vec<(i32, Option<i32>)> =
        sqlx::query_as("SELECT attempts, last_status FROM webhook_deliveries ORDER BY attempts")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(rows, vec![(1, Some(410)), (2, Some(500))]);
}

#[tokio::test]
async fn two_replicas_deliver_each_event_exactly_once() {
    let a = spawn_app().await;
    let b = spawn_replica(&a).await;
    let receiver = Receiver::start().await;
    let s = relayed(&a, &receiver, &["message"], None).await;

    const N: usize = 60;
    for i in 0..N {
        let base = if i % 2 == 0 { &a.address } else { &b.address };
        s.deliver(base, &s.event(&format!("evt_{i}"), "message", json!({})))
            .await;
    }
    receiver.wait_for(N, Duration::from_secs(20)).await;
    a.outbox_drained().await;
    let ids = event_ids(&receiver.hits());
    let distinct: HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), N, "every event arrived");
    assert_eq!(ids.len(), N, "and none twice");
}

#[tokio::test]
async fn a_private_address_is_refused_at_delivery_when_not_allowed() {
    // Registered while private targets were allowed; a name that later resolves to a private
    // address is caught the same way, on the resolved address.
    let permissive = spawn_app().await;
    let receiver = Receiver::start().await;
    let url = receiver.url.replace("127.0.0.1", "localhost");
    let s = RelayedSession::start(&permissive, &[message_subscription(&url)]).await;
    let app = spawn_replica_with(&permissive, |vars| {
        vars.insert("WAGW_WEBHOOK_ALLOW_PRIVATE".into(), "false".into());
    })
    .await;
    permissive.stop().await;
    s.deliver(&app.address, &s.event("evt_1", "message", json!({})))
        .await;

    let refused = eventually(PATIENCE, || async {
        let row: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT status, last_error FROM webhook_deliveries",
        )
        .fetch_optional(&app.pool)
        .await
        .unwrap();
        matches!(row, Some((status, Some(error))) if status == "failed" && error.contains("internal address"))
    })
    .await;
    assert!(refused, "the delivery fails on the address check");
    assert!(
        receiver.hits().is_empty(),
        "nothing reached the private address"
    );
}

#[tokio::test]
async fn after_a_sigkill_with_deliveries_pending_every_event_arrives() {
    // Set up in-process, then stopped: from then on only the real binary delivers.
    let app = spawn_app().await;
    let receiver = Receiver::answering(503).await;
    let s = RelayedSession::start(
        &app,
        &[subscription(
            &receiver.url,
            &["message"],
            None,
            ("constant", 1, 20),
        )],
    )
    .await;
    let (vars, pool) = (app.vars.clone(), app.pool.clone());
    // The binary goes on with the app's simulator and database.
    let (_sim, _db) = (app.sim.clone(), app.db.clone());
    app.stop().await;
    let gateway = GatewayProcess::start(&vars).await;

    const N: usize = 10;
    for i in 0..N {
        s.deliver(
            &gateway.address,
            &s.event(&format!("evt_{i}"), "message", json!({})),
        )
        .await;
    }
    // Every event has been tried (and refused) at least once: all are pending, mid-retry.
    receiver.wait_for(N, PATIENCE).await;
    gateway.kill().await;

    receiver.answer_with(200);
    let before = receiver.hits().len();
    let restarted = GatewayProcess::start(&vars).await;
    let all_arrived = eventually(Duration::from_secs(40), || async {
        let delivered: HashSet<String> =
            event_ids(&receiver.hits()[before..]).into_iter().collect();
        delivered.len() == N
    })
    .await;
    assert!(
        all_arrived,
        "every event arrives after the restart:\n{}",
        restarted.logs()
    );
    // The receiver saw them; the rows record it a moment later.
    let recorded = eventually(PATIENCE, || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        n == N as i64
    })
    .await;
    assert!(recorded, "every delivery is recorded as delivered");
}

/// The events the gateway has registered with the upstream for `upstream` (`None`: none).
async fn ingress_events(app: &TestApp, upstream: &str) -> Option<Vec<String>> {
    sqlx::query_scalar::<_, Option<Vec<String>>>(
        "SELECT events FROM webhook_ingress WHERE upstream_name = $1",
    )
    .bind(upstream)
    .fetch_optional(&app.pool)
    .await
    .unwrap()
    .flatten()
}

/// The JSON body of a call in the simulator's log.
fn body_of(call: &Value) -> Value {
    serde_json::from_str(call["body"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn every_session_is_registered_for_every_event_before_its_creation_answers() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let tenant = app.tenant().await;
    let upstream = app.working_session(&tenant, "default").await;
    // Registered when the 201 came, with no subscription at all: the event log needs it.
    assert_eq!(
        ingress_events(&app, &upstream).await,
        Some(vec!["*".to_owned()])
    );
    let log = app.sim_log().await;
    let calls = registrations(&log, &upstream);
    assert_eq!(calls.len(), 1, "one registration: {calls:?}");
    let call = calls[0];
    assert_eq!(call["method"], "POST");
    assert_eq!(call["headers"]["x-rapidapi-key"], UPSTREAM_KEY);
    let body = body_of(call);
    assert_eq!(body["events"], json!(["*"]));
    let webhook_url = body["webhookUrl"].as_str().unwrap().to_owned();
    assert!(
        webhook_url.starts_with(&format!("{}/webhooks/ingress/", app.address)),
        "{webhook_url}"
    );
    let token = webhook_url.rsplit('/').next().unwrap();
    assert!(token.len() >= 40, "an unguessable token");
    let key = body["hmacKey"].as_str().unwrap().to_owned();

    // The session's own status events have all arrived (and reached nobody) before anyone
    // subscribes to `session.status`.
    app.sim_delivered().await;
    // Subscribing needs no other registration: the upstream already sends everything.
    let other = format!("{}/other", receiver.base);
    for (url, events) in [
        (&receiver.url, ["message.ack", "message"]),
        (&other, ["message", "session.status"]),
    ] {
        app.subscribe(
            &tenant,
            "default",
            subscription(url, &events, None, DEFAULT_POLICY),
        )
        .await;
    }
    let now = chrono::Utc::now().timestamp_millis();
    for (id, event) in [("evt_1", "message.ack"), ("evt_2", "presence.update")] {
        let e = json!({"id": id, "timestamp": now, "event": event, "session": upstream,
                       "payload": {"ack": 3}});
        let r = post_signed(&app.address, token, &key, &e).await;
        assert_eq!(r.status(), 200);
    }
    let acked = eventually(PATIENCE, || async { !receiver.hits_at("/hook").is_empty() }).await;
    assert!(acked, "the event reached the subscription");
    let hit = &receiver.hits_at("/hook")[0];
    assert_eq!(hit.json()["event"], "message.ack");
    assert_eq!(hit.json()["session"], "default");
    // The event nobody subscribed to is logged and delivered to nobody.
    app.outbox_drained().await;
    assert_eq!(event_ids(&receiver.hits()), vec!["evt_1"]);
    // The log shows an event once every transaction older than it has settled (its cursor
    // fence), and the test cluster is shared with other tests' transactions: wait for it.
    let read = || app.get_as(&tenant, "/v1/events?event=presence.update");
    let shown = eventually(PATIENCE, || async {
        read().await.json["events"][0]["id"] == "evt_2"
    })
    .await;
    let logged = read().await;
    assert!(shown, "the unsubscribed event was logged: {logged:?}");
    assert_eq!(
        logged.json["events"].as_array().map(Vec::len),
        Some(1),
        "{logged:?}"
    );

    // Every subscription removed: the registration stays, for the log.
    for url in [&receiver.url, &other] {
        let path = format!("/v1/sessions/default/webhooks?webhookUrl={url}");
        let removed = crate::helpers::answer(app.call(&tenant, Method::DELETE, &path)).await;
        assert_eq!(removed.status, 200, "{removed:?}");
    }
    assert_eq!(
        ingress_events(&app, &upstream).await,
        Some(vec!["*".to_owned()])
    );
    let log = app.sim_log().await;
    assert_eq!(registrations(&log, &upstream).len(), 1, "no call since");
}

#[tokio::test]
async fn through_the_simulator_an_incoming_message_arrives_once_signed_with_the_tenants_name() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let s = relayed(
        &app,
        &receiver,
        &["message", "message.any", "message.ack"],
        Some("tenant-secret"),
    )
    .await;
    // The gateway registered its ingress with the upstream for what the subscription needs.
    let session = app.sim_session(&s.upstream).await;
    assert_eq!(
        session["webhooks"].as_array().map(Vec::len),
        Some(1),
        "the gateway's ingress is registered with the upstream: {session}"
    );

    let incoming = app.sim_incoming(&s.upstream, "hello").await;
    let hits = receiver.wait_for(1, PATIENCE).await;
    // `message` and `message.any` both fired; the subscription has both: once.
    let both_in = eventually(PATIENCE, || async { app.stored_events().await == 2 }).await;
    assert!(both_in, "the upstream posted both events");
    app.outbox_drained().await;
    assert_eq!(
        receiver.hits().len(),
        1,
        "{:?}",
        event_ids(&receiver.hits())
    );
    let hit = &hits[0];
    let body = hit.json();
    assert_eq!(body["event"], "message");
    assert_eq!(body["session"], "default");
    assert_eq!(body["payload"]["body"], "hello");
    assert_eq!(body["payload"]["id"], incoming["id"]);
    assert!(!String::from_utf8_lossy(&hit.body).contains(&s.upstream));
    assert_eq!(
        hit.header("x-webhook-hmac"),
        webhook_signature("tenant-secret", &hit.body)
    );
    assert_eq!(hit.header("x-webhook-hmac-algorithm"), "sha512");

    let acked = app
        .sim_post(
            &format!("/_sim/sessions/{}/ack", s.upstream),
            json!({"messageId": incoming["id"], "ack": 3}),
        )
        .await;
    assert!(acked.status().is_success());
    let hits = receiver.wait_for(2, PATIENCE).await;
    assert_eq!(hits[1].json()["event"], "message.ack");
    assert_eq!(hits[1].json()["session"], "default");
}

// ---- A tenant's own webhook routes ---------------------------------------------------------------

const HOOKS: &str = "/v1/sessions/default/webhooks";
const DELIVERIES: &str = "/v1/sessions/default/webhooks/deliveries";

/// A tenant's WORKING session `default` with a signed webhook at `receiver` (constant retries,
/// a secret custom header); answers the tenant, the upstream name and the 201's JSON.
async fn tenant_with_webhook(app: &TestApp, receiver: &Receiver) -> (TestTenant, String, Value) {
    let tenant = app.tenant().await;
    let upstream = app.working_session(&tenant, "default").await;
    let created = app
        .subscribe(
            &tenant,
            "default",
            json!({"webhookUrl": receiver.url, "events": ["message", "message.any"],
                   "hmacKey": "tenant-key", "retries": {"policy": "constant", "delaySeconds": 1, "attempts": 3},
                   "customHeaders": [{"name": "X-Token", "value": "secret-token"}]}),
        )
        .await;
    (tenant, upstream, created)
}

/// A message from a contact relayed to the tenant's webhook and recorded as delivered;
/// answers what the receiver got and the delivery's id.
async fn one_delivered(
    app: &TestApp,
    tenant: &TestTenant,
    upstream: &str,
    receiver: &Receiver,
) -> (Hit, String) {
    app.sim_incoming(upstream, "hi").await;
    let hits = receiver.wait_for(1, PATIENCE).await;
    let delivered = eventually(Duration::from_secs(5), || async {
        let d = app.get_as(tenant, DELIVERIES).await.json;
        d.as_array()
            .is_some_and(|d| d.len() == 1 && d[0]["status"] == "delivered")
    })
    .await;
    assert!(delivered);
    let deliveries = app.get_as(tenant, DELIVERIES).await.json;
    (
        hits[0].clone(),
        deliveries[0]["id"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn a_webhook_names_only_the_seeds_events_and_an_http_url() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    app.working_session(&tenant, "default").await;
    let bad = app
        .post_as(
            &tenant,
            HOOKS,
            json!({"webhookUrl": "http://127.0.0.1:9/hook", "events": ["message", "msg"]}),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.message().contains("message.revoked"), "{bad:?}");
    let bad = app
        .post_as(&tenant, HOOKS, json!({"webhookUrl": "ftp://example.com/x"}))
        .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn another_tenants_session_has_no_webhooks_for_me() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    tenant_with_webhook(&app, &receiver).await;
    // Another tenant's session, or none: 404.
    let other = app.tenant().await;
    let res = app
        .post_as(&other, HOOKS, json!({"webhookUrl": receiver.url}))
        .await;
    assert_eq!(res.status, 404);
    assert_eq!(app.get_as(&other, HOOKS).await.status, 404);
}

#[tokio::test]
async fn a_registered_webhook_is_listed_without_its_secrets_and_registered_upstream_first() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let (tenant, upstream, created) = tenant_with_webhook(&app, &receiver).await;
    assert_eq!(created["webhookUrl"], receiver.url);
    assert!(
        !created.to_string().contains("tenant-key")
            && !created.to_string().contains("secret-token")
    );
    // When the 201 came, the upstream already had the gateway's registration.
    let session = app.sim_session(&upstream).await;
    let registered = &session["webhooks"][0];
    assert!(
        registered["url"]
            .as_str()
            .unwrap_or_default()
            .contains("/webhooks/ingress/")
            || registered["webhookUrl"]
                .as_str()
                .unwrap_or_default()
                .contains("/webhooks/ingress/"),
        "{session}"
    );
    let listed = app.get_as(&tenant, HOOKS).await.json;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["events"], json!(["message", "message.any"]));
    assert_eq!(listed[0]["signed"], true);
}

#[tokio::test]
async fn a_relayed_message_arrives_signed_and_is_listed_as_delivered() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let (tenant, upstream, _) = tenant_with_webhook(&app, &receiver).await;
    let (hit, _) = one_delivered(&app, &tenant, &upstream, &receiver).await;
    assert_eq!(hit.json()["session"], "default");
    assert_eq!(
        hit.header("x-webhook-hmac"),
        webhook_signature("tenant-key", &hit.body)
    );
    assert_eq!(hit.header("x-token"), "secret-token");
    let deliveries = app.get_as(&tenant, DELIVERIES).await.json;
    assert_eq!(deliveries[0]["attempts"], 1);
    assert_eq!(deliveries[0]["lastStatusCode"], 200);
    assert_eq!(deliveries[0]["event"], "message");
}

#[tokio::test]
async fn a_tenant_replays_its_own_delivery_and_no_one_elses() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let (tenant, upstream, _) = tenant_with_webhook(&app, &receiver).await;
    let (first, id) = one_delivered(&app, &tenant, &upstream, &receiver).await;
    let redeliver = format!("{DELIVERIES}/{id}/redeliver");
    assert_eq!(
        app.post_as(&tenant, &redeliver, json!({})).await.status,
        202
    );
    let hits = receiver.wait_for(2, PATIENCE).await;
    assert_eq!(hits[1].body, first.body, "the same event again");
    let other = app.tenant().await;
    assert_eq!(app.post_as(&other, &redeliver, json!({})).await.status, 404);
}

#[tokio::test]
async fn admins_see_every_tenants_deliveries_and_tenants_do_not_reach_that_listing() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let (tenant, upstream, _) = tenant_with_webhook(&app, &receiver).await;
    let (_, id) = one_delivered(&app, &tenant, &upstream, &receiver).await;
    let (status, all) = app
        .admin(
            Method::GET,
            &format!("/admin/v1/webhooks/deliveries?tenant={}", tenant.id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all[0]["id"], id.as_str());
    assert_eq!(all[0]["sessionName"], "default");
    assert_eq!(all[0]["tenantId"], tenant.id);
    let res = app.get_as(&tenant, "/admin/v1/webhooks/deliveries").await;
    assert_eq!(res.status, 401);
}

#[tokio::test]
async fn an_admin_redelivers_any_tenants_delivery_only_under_its_owner() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let (tenant, upstream, _) = tenant_with_webhook(&app, &receiver).await;
    let (first, id) = one_delivered(&app, &tenant, &upstream, &receiver).await;
    let other = app.tenant().await;
    let path = |tenant: &str, session: &str, id: &str| {
        format!("/admin/v1/tenants/{tenant}/sessions/{session}/webhooks/deliveries/{id}/redeliver")
    };
    // Under another tenant, another session, or as a tenant: nothing is sent again.
    for (owner, session) in [
        (other.id.as_str(), "default"),
        (tenant.id.as_str(), "other"),
    ] {
        let (status, body) = app
            .admin(Method::POST, &path(owner, session, &id), None)
            .await;
        assert_eq!(status, 404, "{body}");
    }
    let (status, _) = app
        .admin(
            Method::POST,
            &path(&tenant.id, "default", "not-a-uuid"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let as_tenant = app
        .post_as(&tenant, &path(&tenant.id, "default", &id), json!({}))
        .await;
    assert_eq!(as_tenant.status, 401);
    let (status, body) = app
        .admin(Method::POST, &path(&tenant.id, "default", &id), None)
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["tenantId"], tenant.id);
    assert_eq!(body["status"], "pending");
    let hits = receiver.wait_for(2, PATIENCE).await;
    assert_eq!(hits.len(), 2, "sent exactly once more");
    assert_eq!(hits[1].body, first.body, "the same event again");
}

#[tokio::test]
async fn a_removed_webhook_gets_nothing_more_and_the_session_stays_registered() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let (tenant, upstream, _) = tenant_with_webhook(&app, &receiver).await;
    let path = format!("{HOOKS}?webhookUrl={}", receiver.url);
    let res = crate::helpers::answer(app.call(&tenant, Method::DELETE, &path)).await;
    assert_eq!(res.status, 200);
    assert_eq!(app.get_as(&tenant, HOOKS).await.json, json!([]));
    assert_eq!(
        app.sim_session(&upstream).await["webhooks"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "the gateway's own registration stays: the session's events still reach its log"
    );
    app.sim_incoming(&upstream, "after the webhook went").await;
    let logged = eventually(PATIENCE, || async {
        let page = app.get_as(&tenant, "/v1/events?event=message").await;
        page.json["events"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
    })
    .await;
    assert!(logged, "the message is in the log");
    app.outbox_drained().await;
    assert!(
        receiver.hits().is_empty(),
        "nothing reached the removed webhook"
    );
}

#[tokio::test]
async fn a_deleted_sessions_ingress_is_refused_on_every_replica_long_before_its_cache_expires() {
    let app = spawn_app().await;
    let replica = spawn_replica(&app).await;
    let receiver = Receiver::start().await;
    let s = relayed(&app, &receiver, &["message"], None).await;
    // The replica has read (and keeps) the token's session.
    s.deliver(&replica.address, &s.event("evt_1", "message", json!({})))
        .await;

    let deleted = app
        .call(&s.tenant, Method::DELETE, "/v1/sessions/default")
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    // The announcement reaches the replica in milliseconds; the cache's own limit is 30 s.
    let refused = eventually(Duration::from_secs(5), || async {
        let e = s.event("evt_2", "message", json!({}));
        post_signed(&replica.address, &s.token, &s.ingress_key, &e)
            .await
            .status()
            == 401
    })
    .await;
    assert!(refused, "the replica forgot the deleted session's ingress");
}
