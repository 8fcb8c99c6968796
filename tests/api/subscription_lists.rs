//! The tenants' subscription lists that session answers show (`GET /v1/sessions`, `GET
//! /v1/sessions/{name}`, `GET /v1/sessions/{name}/webhooks`) are cached per tenant and mode;
//! every change shows at once on the replica that made it, within moments on every other,
//! a secret's grace period ends in them without any write, and no tenant ever sees another's.
//!
//! A replica's own writes are checked with the announcing trigger switched off on the test's
//! database: only the replica's own invalidation can then make them show.

use crate::helpers::{
    eventually, message_subscription, spawn_app, spawn_replica, subscription, Receiver,
    RelayedSession, TestApp, TestTenant,
};
use crate::test_keys::test_key_of;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// Within this another replica shows a change (it hears of it in milliseconds; a list is
/// kept a minute at most).
const ELSEWHERE: Duration = Duration::from_secs(5);

/// Switches the trigger that announces subscription changes off: no replica hears of them.
async fn silence_announcements(app: &TestApp) {
    sqlx::query("ALTER TABLE webhook_subscriptions DISABLE TRIGGER webhook_subscriptions_announce")
        .execute(&app.pool)
        .await
        .unwrap();
}

fn urls(hooks: &Value) -> Vec<String> {
    hooks
        .as_array()
        .map(|items| {
            let url = |h: &Value| h["url"].as_str().unwrap().to_owned();
            items.iter().map(url).collect()
        })
        .unwrap_or_default()
}

/// The webhook URLs `GET /v1/sessions` shows in session `name`'s `config`.
async fn listed_urls(app: &TestApp, tenant: &TestTenant, name: &str) -> Vec<String> {
    let all = app.get_as(tenant, "/v1/sessions").await;
    assert_eq!(all.status, 200, "{all:?}");
    let mut sessions = all.json.as_array().unwrap().iter();
    let session = sessions
        .find(|s| s["name"] == name)
        .expect("the session is listed");
    urls(&session["config"]["webhooks"])
}

/// The webhook URLs `GET /v1/sessions/{name}` shows in its `config`.
async fn shown_urls(app: &TestApp, tenant: &TestTenant, name: &str) -> Vec<String> {
    let one = app.get_as(tenant, &format!("/v1/sessions/{name}")).await;
    assert_eq!(one.status, 200, "{one:?}");
    urls(&one.json["config"]["webhooks"])
}

/// Session `name`'s webhooks as `GET /v1/sessions/{name}/webhooks` lists them.
async fn hooks(app: &TestApp, tenant: &TestTenant, name: &str) -> Vec<Value> {
    let listed = app
        .get_as(tenant, &format!("/v1/sessions/{name}/webhooks"))
        .await;
    assert_eq!(listed.status, 200, "{listed:?}");
    listed.json.as_array().cloned().unwrap()
}

/// Every answer that shows session `name`'s webhooks has exactly `expected` URLs.
async fn assert_shown(app: &TestApp, tenant: &TestTenant, name: &str, expected: &[&str]) {
    assert_eq!(
        listed_urls(app, tenant, name).await,
        expected,
        "GET /v1/sessions"
    );
    assert_eq!(
        shown_urls(app, tenant, name).await,
        expected,
        "GET /v1/sessions/{name}"
    );
    let listed: Vec<Value> = hooks(app, tenant, name).await;
    let listed: Vec<&str> = listed
        .iter()
        .map(|h| h["webhookUrl"].as_str().unwrap())
        .collect();
    assert_eq!(listed, expected, "GET /v1/sessions/{name}/webhooks");
}

fn standard(url: &str) -> Value {
    json!({"webhookUrl": url, "events": ["message"], "signing": "standard"})
}

async fn delete(app: &TestApp, tenant: &TestTenant, path: &str, body: Value) {
    let res = app.call(tenant, Method::DELETE, path).json(&body);
    let res = res.send().await.unwrap();
    assert!(res.status().is_success(), "DELETE {path}: {}", res.status());
}

#[tokio::test]
async fn a_replicas_own_writes_show_at_once_in_every_session_answer() {
    let app = spawn_app().await;
    silence_announcements(&app).await;
    let tenant = app.tenant().await;
    app.working_session(&tenant, "default").await;
    let (first, second) = ("http://127.0.0.1:9/first", "http://127.0.0.1:9/second");
    // Read (and kept) before every change.
    assert_shown(&app, &tenant, "default", &[]).await;

    let added = app.subscribe(&tenant, "default", standard(first)).await;
    assert_shown(&app, &tenant, "default", &[first]).await;
    app.subscribe(&tenant, "default", message_subscription(second))
        .await;
    assert_shown(&app, &tenant, "default", &[first, second]).await;

    // A rotation shows in the webhook list at once.
    assert!(hooks(&app, &tenant, "default").await[0]["previousSecretExpiresAt"].is_null());
    let id = added["id"].as_str().unwrap();
    let rotate = format!("/v1/sessions/default/webhooks/{id}/rotate-secret");
    let rotated = app.post_as(&tenant, &rotate, json!({})).await;
    assert_eq!(rotated.status, 200, "{rotated:?}");
    let until = &rotated.json["previousSecretExpiresAt"];
    assert!(until.is_string(), "{rotated:?}");
    assert_eq!(
        &hooks(&app, &tenant, "default").await[0]["previousSecretExpiresAt"],
        until
    );

    // Replacing a subscription (same URL) shows its new settings.
    let signed = subscription(second, &["message"], Some("key"), ("constant", 1, 2));
    app.subscribe(&tenant, "default", signed).await;
    let listed = app.get_as(&tenant, "/v1/sessions/default").await.json;
    assert_eq!(listed["config"]["webhooks"][1]["signed"], true, "{listed}");

    let one = json!({"webhookUrl": first});
    delete(&app, &tenant, "/v1/sessions/default/webhooks", one).await;
    assert_shown(&app, &tenant, "default", &[second]).await;

    // A session deleted and created again under its name starts without webhooks.
    delete(&app, &tenant, "/v1/sessions/default", json!({})).await;
    app.working_session(&tenant, "default").await;
    assert_shown(&app, &tenant, "default", &[]).await;
}

#[tokio::test]
async fn an_endpoints_health_shows_at_once_on_the_replica_whose_workers_changed_it() {
    let app = spawn_app().await;
    silence_announcements(&app).await;
    let receiver = Receiver::answering(500).await;
    let retries = ("constant", 1, 20);
    let hook = subscription(&receiver.url, &["message"], None, retries);
    let s = RelayedSession::start(&app, &[hook]).await;
    let before = &hooks(&app, &s.tenant, "default").await[0];
    assert!(
        before["failingSince"].is_null() && before["enabled"] == true,
        "{before}"
    );

    // The first attempt failed: the endpoint is failing from then on.
    s.deliver(&app.address, &s.event("evt_1", "message", json!({})))
        .await;
    let failed = eventually(Duration::from_secs(10), || async {
        let path = "/v1/sessions/default/webhooks/deliveries";
        let listed = app.get_as(&s.tenant, path).await.json;
        listed[0]["lastStatusCode"] == 500
    })
    .await;
    assert!(failed, "an attempt failed");
    let failing = &hooks(&app, &s.tenant, "default").await[0];
    assert!(failing["failingSince"].is_string(), "{failing}");

    // A 410 disables it: once its tenant's log says so, its list says so too.
    receiver.answer_with(410);
    let logged = eventually(Duration::from_secs(10), || async {
        let disabled: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM webhook_events WHERE event = 'webhook.disabled'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        disabled == 1
    })
    .await;
    assert!(logged, "the endpoint was disabled");
    let disabled = &hooks(&app, &s.tenant, "default").await[0];
    assert_eq!(disabled["enabled"], false, "{disabled}");

    let id = disabled["id"].as_str().unwrap();
    let enable = format!("/v1/sessions/default/webhooks/{id}/enable");
    assert_eq!(app.post_as(&s.tenant, &enable, json!({})).await.status, 200);
    let enabled = &hooks(&app, &s.tenant, "default").await[0];
    assert!(
        enabled["enabled"] == true && enabled["failingSince"].is_null(),
        "{enabled}"
    );
}

#[tokio::test]
async fn a_change_on_one_replica_shows_on_another_within_moments() {
    let a = spawn_app().await;
    let b = spawn_replica(&a).await;
    let tenant = a.tenant().await;
    a.working_session(&tenant, "default").await;
    let url = "http://127.0.0.1:9/hook";
    // Replica B has read (and keeps) the tenant's list.
    assert_shown(&b, &tenant, "default", &[]).await;

    let added = a.subscribe(&tenant, "default", standard(url)).await;
    let shown = eventually(ELSEWHERE, || async {
        listed_urls(&b, &tenant, "default").await == [url]
            && shown_urls(&b, &tenant, "default").await == [url]
    })
    .await;
    assert!(shown, "replica B shows the webhook added on A");

    let id = added["id"].as_str().unwrap();
    let rotate = format!("/v1/sessions/default/webhooks/{id}/rotate-secret");
    assert_eq!(a.post_as(&tenant, &rotate, json!({})).await.status, 200);
    let rotated = eventually(ELSEWHERE, || async {
        hooks(&b, &tenant, "default").await[0]["previousSecretExpiresAt"].is_string()
    })
    .await;
    assert!(rotated, "replica B shows the rotation made on A");

    delete(&a, &tenant, "/v1/sessions/default/webhooks", json!({})).await;
    let removed = eventually(ELSEWHERE, || async {
        listed_urls(&b, &tenant, "default").await.is_empty()
            && hooks(&b, &tenant, "default").await.is_empty()
    })
    .await;
    assert!(removed, "replica B forgets the webhook removed on A");
}

#[tokio::test]
async fn a_secrets_grace_period_ends_in_the_list_without_any_write() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    app.working_session(&tenant, "default").await;
    let added = app
        .subscribe(&tenant, "default", standard("http://127.0.0.1:9/hook"))
        .await;
    let id = added["id"].as_str().unwrap();
    let rotate = format!("/v1/sessions/default/webhooks/{id}/rotate-secret");
    let rotated = app
        .post_as(&tenant, &rotate, json!({"gracePeriodSeconds": 2}))
        .await;
    assert_eq!(rotated.status, 200, "{rotated:?}");
    let until = rotated.json["previousSecretExpiresAt"].as_str().unwrap();
    let until = chrono::DateTime::parse_from_rfc3339(until)
        .unwrap()
        .to_utc();
    // Shown (and kept) while the grace period lasts.
    let listed = &hooks(&app, &tenant, "default").await[0];
    assert!(listed["previousSecretExpiresAt"].is_string(), "{listed}");

    let ended = eventually(Duration::from_secs(10), || async {
        hooks(&app, &tenant, "default").await[0]["previousSecretExpiresAt"].is_null()
    })
    .await;
    assert!(
        ended,
        "the list stops showing a grace period that has passed"
    );
    // Not before it passed (the two clocks may differ by a little).
    let early = until - chrono::Utc::now();
    assert!(early < chrono::Duration::milliseconds(500), "{early} early");
}

#[tokio::test]
async fn no_tenant_or_mode_ever_sees_anothers_cached_subscriptions() {
    let app = spawn_app().await;
    let (one, other) = (app.tenant().await, app.tenant().await);
    let one_test = test_key_of(&app, &one).await;
    // The same session name everywhere: a live session of each tenant, a test one of `one`.
    app.working_session(&one, "default").await;
    app.working_session(&other, "default").await;
    let created = app
        .post_as(&one_test, "/v1/sessions", json!({"name": "default"}))
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let url = "http://127.0.0.1:9/one";
    app.subscribe(&one, "default", message_subscription(url))
        .await;
    // `one`'s live list is read (and kept) first.
    assert_shown(&app, &one, "default", &[url]).await;

    for (who, what) in [(&other, "another tenant"), (&one_test, "the test mode")] {
        assert!(listed_urls(&app, who, "default").await.is_empty(), "{what}");
        assert!(hooks(&app, who, "default").await.is_empty(), "{what}");
    }
    assert!(shown_urls(&app, &other, "default").await.is_empty());
    // And the other way round: what they add never shows in `one`'s list.
    let theirs = "http://127.0.0.1:9/theirs";
    app.subscribe(&other, "default", message_subscription(theirs))
        .await;
    assert_shown(&app, &other, "default", &[theirs]).await;
    assert_shown(&app, &one, "default", &[url]).await;
}
