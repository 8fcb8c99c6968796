//! Test keys (issue 17, part 2): a key made with `"mode": "test"` is served by the gateway's
//! own in-process simulator. Its calls never reach the upstream (the simulator the tests use as
//! upstream logs nothing), spend none of the month, and its sessions, webhooks and events are
//! apart from the live ones. The hostile cases: a bad mode, a forged mode prefix, a test key on
//! admin routes, and live events that must never reach a test session's webhook.

use crate::helpers::{
    answer, eventually, spawn_app, subscription, Receiver, TestApp, TestTenant, DEFAULT_POLICY,
};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use wa_gateway::domain::{api_key, Mode};

/// The simulator's auto-scan is 3 s after the QR code is fetched (as in sandbox mode).
const SCAN_PATIENCE: Duration = Duration::from_secs(15);
const PATIENCE: Duration = Duration::from_secs(10);

/// Issues the tenant a key of every scope in `mode` (a JSON value: the hostile tests send
/// anything); answers the status and the body.
async fn issue(app: &TestApp, tenant: &str, mode: Value) -> (u16, Value) {
    let body = json!({"name": "ci", "scopes": ["*"], "mode": mode});
    app.admin(
        Method::POST,
        &format!("/admin/v1/tenants/{tenant}/keys"),
        Some(body),
    )
    .await
}

/// The same tenant, called with a test key of its own.
pub(crate) async fn test_key_of(app: &TestApp, tenant: &TestTenant) -> TestTenant {
    let (status, key) = issue(app, &tenant.id, json!("test")).await;
    assert_eq!(status, 201, "issuing a test key: {key}");
    TestTenant {
        id: tenant.id.clone(),
        name: tenant.name.clone(),
        key: key["key"].as_str().unwrap().to_owned(),
    }
}

/// Creates `name` with `who`'s key, fetches its QR code and waits until the simulator
/// serving that key has scanned it by itself (no control API: a test key's simulator is
/// private to the gateway).
pub(crate) async fn self_scanned_session(app: &TestApp, who: &TestTenant, name: &str) {
    let created = app
        .post_as(who, "/v1/sessions", json!({"name": name}))
        .await;
    assert_eq!(created.status, 201, "creating {name}: {created:?}");
    let qr = app.get_as(who, &format!("/v1/{name}/auth/qr")).await;
    assert_eq!(qr.status, 200, "the QR code of {name}: {qr:?}");
    let working = eventually(SCAN_PATIENCE, || async {
        let s = app.get_as(who, &format!("/v1/sessions/{name}")).await;
        s.json["status"] == "WORKING"
    })
    .await;
    assert!(working, "{name} scanned itself");
}

fn send_text(session: &str) -> Value {
    json!({"session": session, "chatId": "123456789@c.us", "text": "from CI"})
}

fn names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list
        .as_array()
        .expect("a list of sessions")
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_test_keys_calls_answer_like_the_sandbox_and_leave_the_upstream_and_the_month_untouched()
{
    let app = spawn_app().await;
    let live = app.tenant_of(json!({"monthly_requests": 1000})).await;
    let test = test_key_of(&app, &live).await;
    let before = app.get_as(&live, "/v1/me").await.json["usage"].clone();

    self_scanned_session(&app, &test, "ci").await;
    let sent = app.post_as(&test, "/v1/sendText", send_text("ci")).await;
    assert_eq!(sent.status, 201, "{sent:?}");
    assert!(sent.json["id"].is_string(), "a message like the sandbox's");
    let listed = app.get_as(&test, "/v1/sessions").await;
    assert_eq!(listed.status, 200);
    assert_eq!(names(&listed.json), ["ci"]);
    assert_eq!(listed.json[0]["status"], "WORKING");

    assert!(app.sim_log().await.is_empty(), "the upstream saw nothing");
    assert_eq!(app.leased(&live).await, 0, "no lease of the month taken");
    let after = app.get_as(&live, "/v1/me").await.json["usage"].clone();
    assert_eq!(after["used"], before["used"]);
    assert_eq!(after["remaining"], before["remaining"]);
    // Counted apart: create, QR, the status polls, sendText and the list.
    assert!(after["test"]["requests"].as_i64().unwrap() >= 4, "{after}");
    let endpoints = after["test"]["endpoints"].as_array().unwrap();
    assert!(endpoints.iter().any(|e| e["endpoint"] == "sendText"));
    let (status, admin_view) = app
        .admin(
            Method::GET,
            &format!("/admin/v1/tenants/{}/usage", live.id),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(admin_view["test"], after["test"]);
}

#[tokio::test]
async fn live_and_test_keys_never_see_each_others_sessions_and_may_share_a_name() {
    let app = spawn_app().await;
    // One live session allowed: test sessions count against a cap of their own.
    let live = app.tenant_of(json!({"max_sessions": 2})).await;
    let test = test_key_of(&app, &live).await;
    for (who, name) in [
        (&live, "shared"),
        (&live, "live-only"),
        (&test, "shared"),
        (&test, "test-only"),
    ] {
        let created = app
            .post_as(who, "/v1/sessions", json!({"name": name}))
            .await;
        assert_eq!(created.status, 201, "creating {name}: {created:?}");
    }
    // Another test session: the tenant's live max_sessions does not apply to it.
    let third = app
        .post_as(&test, "/v1/sessions", json!({"name": "third"}))
        .await;
    assert_eq!(third.status, 201, "{third:?}");

    // Each key's webhook routes (answered by the gateway itself) find only its own mode's.
    for (who, theirs) in [(&live, "test-only"), (&test, "live-only")] {
        let seen = app
            .get_as(who, &format!("/v1/sessions/{theirs}/webhooks"))
            .await;
        assert_eq!(seen.status, 404, "{theirs}: {seen:?}");
        assert_eq!(
            seen.json["message"],
            format!("session \"{theirs}\" not found")
        );
        let missing = app.get_as(who, "/v1/sessions/never-made/webhooks").await;
        assert_eq!(missing.status, 404);
        assert_eq!(
            app.get_as(who, &format!("/v1/sessions/{theirs}"))
                .await
                .status,
            404
        );
    }
    assert_eq!(
        names(&app.get_as(&live, "/v1/sessions").await.json),
        ["live-only", "shared"]
    );
    assert_eq!(
        names(&app.get_as(&test, "/v1/sessions").await.json),
        ["shared", "test-only", "third"]
    );
    // The two sessions named `shared` are different sessions: deleting the test one leaves
    // the live one.
    let deleted = answer(app.call(&test, Method::DELETE, "/v1/sessions/shared")).await;
    assert!(deleted.status < 300, "{deleted:?}");
    assert_eq!(app.get_as(&live, "/v1/sessions/shared").await.status, 200);
    assert_eq!(app.get_as(&test, "/v1/sessions/shared").await.status, 404);
    let log = app.sim_log().await;
    assert!(
        log.iter().all(|call| call["method"] != "DELETE"),
        "the test key's deletion never reached the upstream: {log:?}"
    );
}

#[tokio::test]
async fn a_test_keys_text_has_the_test_prefix_and_a_live_keys_does_not() {
    let app = spawn_app().await;
    let live = app.tenant().await;
    let (status, created) = issue(&app, &live.id, json!("test")).await;
    assert_eq!(status, 201);
    let test_key = created["key"].as_str().unwrap();
    assert!(test_key.starts_with("wagw_test_"), "{test_key}");
    assert_eq!(created["mode"], "test");
    assert!(created["prefix"]
        .as_str()
        .unwrap()
        .starts_with("wagw_test_"));
    assert!(live.key.starts_with("wagw_") && !live.key.starts_with("wagw_test_"));
    let (status, default) = issue(&app, &live.id, Value::Null).await;
    assert_eq!(status, 400, "null is no mode: {default}");
    let (_, omitted) = app
        .admin(
            Method::POST,
            &format!("/admin/v1/tenants/{}/keys", live.id),
            Some(json!({"name": "no mode", "scopes": ["*"]})),
        )
        .await;
    assert_eq!(omitted["mode"], "live");
    assert!(!omitted["key"].as_str().unwrap().starts_with("wagw_test_"));

    let (_, listed) = app
        .admin(
            Method::GET,
            &format!("/admin/v1/tenants/{}/keys", live.id),
            None,
        )
        .await;
    let modes: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["mode"].as_str().unwrap())
        .collect();
    assert_eq!(
        modes.iter().filter(|m| **m == "test").count(),
        1,
        "{listed}"
    );
    let me = answer(
        app.client
            .get(app.url("/v1/me"))
            .header("x-api-key", test_key),
    )
    .await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json["key"]["mode"], "test");
    // A rotated test key is a test key.
    let id = created["id"].as_str().unwrap();
    let (status, rotated) = app
        .admin(
            Method::POST,
            &format!("/admin/v1/tenants/{}/keys/{id}/rotate", live.id),
            None,
        )
        .await;
    assert_eq!(status, 201, "{rotated}");
    assert!(rotated["key"].as_str().unwrap().starts_with("wagw_test_"));
}

#[tokio::test]
async fn a_mode_other_than_live_or_test_is_400_and_issues_nothing() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let path = format!("/admin/v1/tenants/{}/keys", tenant.id);
    let before = app.admin(Method::GET, &path, None).await.1["total"].clone();
    for mode in [
        json!("LIVE"),
        json!("Test"),
        json!("sandbox"),
        json!(""),
        json!(" test"),
        json!(1),
        json!(true),
        json!(["test"]),
        json!({"mode": "test"}),
        json!("test".repeat(1000)),
    ] {
        let (status, body) = issue(&app, &tenant.id, mode.clone()).await;
        assert_eq!(status, 400, "mode {mode}: {body}");
        assert_eq!(body["statusCode"], 400);
    }
    let after = app.admin(Method::GET, &path, None).await.1["total"].clone();
    assert_eq!(after, before, "no key was issued");
}

/// `wagw_<id>_<secret><checksum>` or `wagw_test_<id>_...`: the id and secret of a key.
fn id_and_secret(key: &str) -> (String, String) {
    let rest = key.strip_prefix("wagw_").unwrap();
    let rest = rest.strip_prefix("test_").unwrap_or(rest);
    let (id, tail) = rest.split_once('_').unwrap();
    (id.to_owned(), tail[..22].to_owned())
}

#[tokio::test]
async fn a_live_keys_secret_under_the_test_prefix_is_401_and_the_reverse() {
    let app = spawn_app().await;
    let live = app.tenant().await;
    let test = test_key_of(&app, &live).await;
    let me = |key: String| {
        let req = app.client.get(app.url("/v1/me")).header("x-api-key", key);
        async move { answer(req).await }
    };
    let (id, secret) = id_and_secret(&live.key);
    // Well formed (the checksum is right for the test prefix), the live key's real secret.
    let forged = api_key::assemble_in(Mode::Test, &id, &secret);
    assert!(forged.starts_with("wagw_test_"));
    let refused = me(forged).await;
    assert_eq!(refused.status, 401, "{refused:?}");
    assert_eq!(refused.json["message"], "invalid API key");
    let (id, secret) = id_and_secret(&test.key);
    let refused = me(api_key::assemble(&id, &secret)).await;
    assert_eq!(refused.status, 401, "{refused:?}");
    // The real keys still work, each in its own mode.
    assert_eq!(me(live.key.clone()).await.json["key"]["mode"], "live");
    assert_eq!(me(test.key.clone()).await.json["key"]["mode"], "test");
}

#[tokio::test]
async fn a_test_key_on_admin_routes_is_refused_like_a_live_key() {
    let app = spawn_app().await;
    let live = app.tenant().await;
    let test = test_key_of(&app, &live).await;
    for path in [
        "/admin/v1/tenants",
        &format!("/admin/v1/tenants/{}/keys", live.id),
    ] {
        for key in [&live.key, &test.key] {
            let bearer = answer(app.client.get(app.url(path)).bearer_auth(key)).await;
            assert_eq!(bearer.status, 401, "{path} with {key:.10}: {bearer:?}");
            let header = answer(app.client.get(app.url(path)).header("x-api-key", key)).await;
            assert_eq!(header.status, 401, "{path}: {header:?}");
        }
        let issued = answer(
            app.client
                .post(app.url(&format!("/admin/v1/tenants/{}/keys", live.id)))
                .bearer_auth(&test.key)
                .json(&json!({"name": "x", "scopes": ["*"], "mode": "live"})),
        )
        .await;
        assert_eq!(issued.status, 401, "{issued:?}");
    }
}

/// The tenant's deliveries to `url`.
async fn deliveries_to(app: &TestApp, url: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM webhook_deliveries d
           JOIN webhook_subscriptions w ON w.id = d.subscription_id WHERE w.url = $1",
    )
    .bind(url)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_test_sessions_webhook_never_receives_live_events_and_gets_its_own() {
    let app = spawn_app().await;
    let live = app.tenant().await;
    let test = test_key_of(&app, &live).await;
    let (to_live, to_test) = (Receiver::start().await, Receiver::start().await);
    // The same session name in both modes, each subscribed to `message` and `message.any`.
    let upstream = app.working_session(&live, "main").await;
    self_scanned_session(&app, &test, "main").await;
    for (who, receiver) in [(&live, &to_live), (&test, &to_test)] {
        let events = ["message", "message.any"];
        let body = subscription(&receiver.url, &events, None, DEFAULT_POLICY);
        let added = app.post_as(who, "/v1/sessions/main/webhooks", body).await;
        assert_eq!(added.status, 201, "{added:?}");
    }

    // A contact writes to the live session: only the live webhook hears of it.
    app.sim_incoming(&upstream, "live only").await;
    let got = to_live.wait_for(1, PATIENCE).await;
    assert!(got.iter().all(|h| h.json()["session"] == "main"));
    app.outbox_drained().await;
    assert!(
        to_test.hits().is_empty(),
        "a live event reached the test webhook"
    );
    assert_eq!(deliveries_to(&app, &to_test.url).await, 0);

    // The test session's own send (in its simulator) reaches the test webhook only.
    let live_before = to_live.hits().len();
    let sent = app.post_as(&test, "/v1/sendText", send_text("main")).await;
    assert_eq!(sent.status, 201, "{sent:?}");
    let got = to_test.wait_for(1, PATIENCE).await;
    assert_eq!(got[0].json()["event"], "message.any");
    assert_eq!(got[0].json()["session"], "main");
    app.outbox_drained().await;
    assert_eq!(
        to_live.hits().len(),
        live_before,
        "a test event reached live"
    );
    let modes: Vec<(String, String)> =
        sqlx::query_as("SELECT DISTINCT event, mode FROM webhook_events ORDER BY 1, 2")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert!(
        modes.contains(&("message".into(), "live".into())),
        "{modes:?}"
    );
    assert!(
        modes.contains(&("message.any".into(), "test".into())),
        "{modes:?}"
    );
    assert!(
        !app.sim_log()
            .await
            .iter()
            .any(|c| c["path"].as_str().is_some_and(|p| p.contains("sendText"))),
        "the test send never reached the upstream"
    );
}

#[tokio::test]
async fn an_idempotency_key_of_a_test_call_is_a_new_call_for_a_live_key() {
    let app = spawn_app().await;
    let live = app.tenant().await;
    let test = test_key_of(&app, &live).await;
    app.working_session(&live, "main").await;
    self_scanned_session(&app, &test, "main").await;
    let send = |who: &TestTenant| {
        app.call(who, Method::POST, "/v1/sendText")
            .header("idempotency-key", "release-42")
            .json(&send_text("main"))
    };
    let tested = answer(send(&test)).await;
    assert_eq!(tested.status, 201, "{tested:?}");
    // The same key and body with the live key: sent for real, not the test call replayed.
    let sent = answer(send(&live)).await;
    assert_eq!(sent.status, 201, "{sent:?}");
    assert_ne!(sent.json["id"], tested.json["id"]);
    assert_eq!(app.sim_count("POST", "/v1/sendText").await, 1);
    // Each key replays its own first answer.
    assert_eq!(answer(send(&test)).await.json["id"], tested.json["id"]);
    assert_eq!(answer(send(&live)).await.json["id"], sent.json["id"]);
}

#[tokio::test]
async fn on_two_replicas_test_calls_leave_the_upstream_and_the_month_untouched() {
    let a = spawn_app().await;
    let b = crate::helpers::spawn_replica(&a).await;
    let live = a.tenant_of(json!({"monthly_requests": 1000})).await;
    let test = test_key_of(&a, &live).await;
    // Each replica's simulator holds the sessions made through it (README, Test keys).
    tokio::join!(
        self_scanned_session(&a, &test, "on-a"),
        self_scanned_session(&b, &test, "on-b")
    );
    for (app, name) in [(&a, "on-a"), (&b, "on-b")] {
        let sent = app.post_as(&test, "/v1/sendText", send_text(name)).await;
        assert_eq!(sent.status, 201, "{name}: {sent:?}");
    }
    // The rows are shared: the name taken through A is taken for B too.
    let again = b
        .post_as(&test, "/v1/sessions", json!({"name": "on-a"}))
        .await;
    assert_eq!(again.status, 409, "{again:?}");

    assert!(a.sim_log().await.is_empty(), "the upstream saw nothing");
    assert_eq!(a.leased(&live).await, 0);
    // A's counts reach the rollups within its next flush (every second).
    let sends = |usage: &Value| {
        let endpoints = usage["test"]["endpoints"].as_array().cloned();
        endpoints
            .unwrap_or_default()
            .iter()
            .find(|e| e["endpoint"] == "sendText")
            .map(|e| e["requests"].clone())
    };
    let both = eventually(PATIENCE, || async {
        let usage = b.get_as(&live, "/v1/me").await.json["usage"].clone();
        usage["used"] == 0 && sends(&usage) == Some(json!(2))
    })
    .await;
    assert!(both, "both replicas' sends counted as test calls only");
}

#[tokio::test]
async fn a_test_keys_webhook_is_its_own_for_rotation_enabling_and_its_disabled_event() {
    let app = spawn_app().await;
    let live = app.tenant().await;
    let test = test_key_of(&app, &live).await;
    app.working_session(&live, "main").await;
    self_scanned_session(&app, &test, "main").await;
    let gone = Receiver::answering(410).await;
    let body = json!({"webhookUrl": gone.url, "events": ["message.any"], "signing": "standard"});
    let added = app.post_as(&test, "/v1/sessions/main/webhooks", body).await;
    assert_eq!(added.status, 201, "{added:?}");
    let id = added.json["id"].as_str().unwrap();
    // The live key's session of the same name has no such webhook.
    for action in ["rotate-secret", "enable"] {
        let path = format!("/v1/sessions/main/webhooks/{id}/{action}");
        assert_eq!(app.post_as(&live, &path, json!({})).await.status, 404);
    }
    // The test session's send meets a 410: the test webhook is disabled, and the event that
    // says so is in the test log.
    let sent = app.post_as(&test, "/v1/sendText", send_text("main")).await;
    assert_eq!(sent.status, 201, "{sent:?}");
    let disabled = eventually(PATIENCE, || async {
        app.get_as(&test, "/v1/sessions/main/webhooks").await.json[0]["enabled"] == false
    })
    .await;
    assert!(disabled);
    let modes: Vec<String> =
        sqlx::query_scalar("SELECT mode FROM webhook_events WHERE event = 'webhook.disabled'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(modes, vec!["test".to_owned()]);
    let path = format!("/v1/sessions/main/webhooks/{id}/enable");
    assert_eq!(app.post_as(&test, &path, json!({})).await.status, 200);
}
