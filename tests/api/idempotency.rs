//! `Idempotency-Key` on sends, on one gateway and across two; session ownership changes
//! reaching every replica at once.

use crate::helpers::{eventually, spawn_app, spawn_replica, TestApp, TestTenant};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

fn text(words: &str) -> Value {
    json!({"chatId": "1234567890", "text": words})
}

async fn send_with_key(
    app: &TestApp,
    tenant: &TestTenant,
    key: &str,
    body: &Value,
) -> (u16, String) {
    let res = app
        .call(tenant, Method::POST, "/v1/sendText")
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn sends(app: &TestApp) -> usize {
    app.sim_log()
        .await
        .iter()
        .filter(|c| c["path"] == "/v1/sendText")
        .count()
}

#[tokio::test]
async fn the_same_key_and_body_replays_the_first_answer_without_a_call_or_quota() {
    let app = spawn_app().await;
    // Creating the session spends one call; two sends are left.
    let tenant = app
        .tenant_with(
            json!({"plan": "custom", "quota": {"monthly_requests": 3}}),
            &["*"],
        )
        .await;
    app.working_session(&tenant, "default").await;
    app.clear_sim_log().await;

    let first = send_with_key(&app, &tenant, "order-1", &text("hello")).await;
    assert_eq!(first.0, 201, "{}", first.1);
    for _ in 0..3 {
        let again = send_with_key(&app, &tenant, "order-1", &text("hello")).await;
        assert_eq!(again, first, "the first answer, byte for byte");
    }
    assert_eq!(sends(&app).await, 1, "one upstream send");

    // Another body under the same key is refused.
    let (status, body) = send_with_key(&app, &tenant, "order-1", &text("changed")).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(sends(&app).await, 1);

    // The replays spent nothing: one more send fits in the quota, and then it is exhausted.
    let (status, body) = send_with_key(&app, &tenant, "order-2", &text("again")).await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = send_with_key(&app, &tenant, "order-3", &text("too many")).await;
    assert_eq!(status, 429);
    // A replay still answers when the quota is exhausted.
    let again = send_with_key(&app, &tenant, "order-1", &text("hello")).await;
    assert_eq!(again, first);
    assert_eq!(sends(&app).await, 2);
}

#[tokio::test]
async fn two_concurrent_identical_requests_on_two_gateways_make_one_upstream_send() {
    let app = spawn_app().await;
    let replica = spawn_replica(&app).await;
    let tenant = app.tenant().await;
    app.working_session(&tenant, "default").await;
    app.clear_sim_log().await;
    // A slow upstream, so the two requests overlap.
    app.sim_fault(json!({"path": "/v1/sendText", "delayMs": 400, "count": 1}))
        .await;
    for round in 0..3 {
        let key = format!("twin-{round}");
        let body = text(&format!("round {round}"));
        let (a, b) = tokio::join!(
            send_with_key(&app, &tenant, &key, &body),
            send_with_key(&replica, &tenant, &key, &body)
        );
        assert_eq!(a.0, 201, "{}", a.1);
        assert_eq!(a, b, "round {round}: both get the one answer");
    }
    assert_eq!(sends(&app).await, 3, "one upstream send per key");
}

#[tokio::test]
async fn deleting_or_adopting_a_session_on_one_replica_takes_effect_on_the_other_at_once() {
    let app = spawn_app().await;
    let replica = spawn_replica(&app).await;
    let tenant = app.tenant().await;
    let first = app.working_session(&tenant, "default").await;
    // The replica caches the ownership.
    let res = replica.tenant_get(&tenant, "/v1/sessions/default").await;
    assert_eq!(res.status(), 200);

    // Deleted and created again on the first gateway: a new upstream session.
    let res = app
        .call(&tenant, Method::DELETE, "/v1/sessions/default")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let second = app.working_session(&tenant, "default").await;
    assert_ne!(first, second);
    let reaches = |upstream: String| {
        let replica = &replica;
        let tenant = &tenant;
        let app = &app;
        async move {
            app.clear_sim_log().await;
            let res = replica.tenant_get(tenant, "/v1/sessions/default").await;
            let ok = res.status() == 200;
            let log = app.sim_log().await;
            ok && log.len() == 1 && log[0]["path"] == format!("/v1/sessions/{upstream}")
        }
    };
    assert!(
        eventually(Duration::from_secs(3), || reaches(second.clone())).await,
        "the replica still uses the deleted session"
    );

    // An admin deletes it and adopts another upstream session under the same name.
    let res = app
        .client
        .post(format!("{}/v1/sessions", app.sim().url()))
        .header("x-rapidapi-key", crate::helpers::UPSTREAM_KEY)
        .header("x-rapidapi-host", wa_gateway::sim::DEFAULT_HOST)
        .json(&json!({"name": "old-phone"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let (status, _) = app
        .admin(
            Method::DELETE,
            &format!("/admin/v1/sessions/{second}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, body) = app
        .admin(
            Method::POST,
            "/admin/v1/sessions/adopt",
            Some(json!({"upstream_name": "old-phone", "tenant_id": tenant.id, "name": "default"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(
        eventually(Duration::from_secs(3), || reaches("old-phone".into())).await,
        "the replica still uses the session the admin deleted"
    );
}

/// Once the upstream has a send, a broken exchange is its outcome: the Idempotency-Key keeps
/// it (a retry replays the failure, nothing is sent twice) and its quota stays spent.
#[tokio::test]
async fn a_send_whose_exchange_breaks_after_receipt_keeps_its_key_and_its_quota() {
    let app = spawn_app().await;
    // Creating the session spends one call; one send is left.
    let tenant = app
        .tenant_with(
            json!({"plan": "custom", "quota": {"monthly_requests": 2}}),
            &["*"],
        )
        .await;
    app.working_session(&tenant, "default").await;
    app.clear_sim_log().await;
    app.sim_fault(json!({"path": "/v1/sendText", "drop": true, "count": 1}))
        .await;

    let first = send_with_key(&app, &tenant, "broken-1", &text("hello")).await;
    assert_eq!(first.0, 502, "{}", first.1);
    let again = send_with_key(&app, &tenant, "broken-1", &text("hello")).await;
    assert_eq!(again, first, "the recorded failure, not a second send");
    assert_eq!(sends(&app).await, 1, "one upstream send");

    // Not refunded: the month is used up.
    let (status, body) = send_with_key(&app, &tenant, "broken-2", &text("more")).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(sends(&app).await, 1);
}
