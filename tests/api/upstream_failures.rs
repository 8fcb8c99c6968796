//! Upstream failures through the simulator's faults: error statuses pass through in the error
//! shape, unreachable is 502, too slow is 504, 429 keeps its Retry-After; GETs are retried on
//! 502, 503, 429 and broken connections, sends never.

use crate::helpers::{spawn_app, spawn_app_full, spawn_app_with, TestApp, TestTenant};
use serde_json::{json, Value};

fn text() -> Value {
    json!({"chatId": "1234567890", "text": "hello"})
}

async fn app_with_session(app: TestApp) -> (TestApp, TestTenant, String) {
    let tenant = app.tenant().await;
    let upstream = app.working_session(&tenant, "default").await;
    app.clear_sim_log().await;
    (app, tenant, upstream)
}

fn calls_to(log: &[Value], path: &str) -> usize {
    log.iter().filter(|c| c["path"] == path).count()
}

#[tokio::test]
async fn an_upstream_error_passes_through_with_only_its_message_and_the_session_renamed() {
    let (app, tenant, upstream) = app_with_session(spawn_app().await).await;
    app.sim_fault(
        json!({"path": "/v1/sendText", "status": 500, "message": "engine crashed", "count": 1}),
    )
    .await;
    let res = app.tenant_post(&tenant, "/v1/sendText", text()).await;
    assert_eq!(res.status(), 500);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"statusCode": 500, "error": "Internal Server Error", "message": "engine crashed"})
    );

    // The upstream's own 422 quotes the session: the tenant sees its own name only.
    app.sim_post(
        &format!("/_sim/sessions/{upstream}/status"),
        json!({"status": "STOPPED"}),
    )
    .await;
    let res = app.tenant_post(&tenant, "/v1/sendText", text()).await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("\"default\""), "{message}");
    assert!(!body.to_string().contains(&upstream), "{body}");
    assert_eq!(body.as_object().unwrap().len(), 3, "{body}");
    assert_eq!(calls_to(&app.sim_log().await, "/v1/sendText"), 2);
}

#[tokio::test]
async fn an_unreachable_upstream_is_502() {
    let app = spawn_app_full(|opts| {
        opts.sim = None;
        opts.vars
            .insert("WAGW_UPSTREAM_GET_RETRY_SECS".into(), "1".into());
    })
    .await;
    let tenant = app.tenant().await;
    let res = app.tenant_get(&tenant, "/v1/sessions").await;
    assert_eq!(res.status(), 502);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["statusCode"], 502);
    assert!(!body.to_string().contains("127.0.0.1"), "{body}");
    let res = app
        .tenant_post(&tenant, "/v1/sessions", json!({"name": "bot"}))
        .await;
    assert_eq!(res.status(), 502);
    // The failed creation was not kept.
    let owned: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(owned, 0);
}

#[tokio::test]
async fn a_slow_upstream_is_504() {
    let (app, tenant, upstream) = app_with_session(
        spawn_app_with(|vars| {
            vars.insert("WAGW_UPSTREAM_TIMEOUT_SECS".into(), "1".into());
        })
        .await,
    )
    .await;
    app.sim_fault(json!({"path": "/v1/sendText", "delayMs": 2500, "count": 1}))
        .await;
    let res = app.tenant_post(&tenant, "/v1/sendText", text()).await;
    assert_eq!(res.status(), 504);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["statusCode"], 504);

    let path = format!("/v1/sessions/{upstream}");
    app.sim_fault(json!({"path": path, "delayMs": 2500, "count": 1}))
        .await;
    let res = app.tenant_get(&tenant, "/v1/sessions/default").await;
    assert_eq!(res.status(), 504);
}

#[tokio::test]
async fn an_upstream_429_is_429_with_retry_after_and_a_send_is_not_retried() {
    let (app, tenant, _) = app_with_session(spawn_app().await).await;
    app.sim_fault(json!({"path": "/v1/sendText", "status": 429, "retryAfter": 7, "count": 1}))
        .await;
    let res = app.tenant_post(&tenant, "/v1/sendText", text()).await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "7");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["statusCode"], 429);

    for fault in [
        json!({"path": "/v1/sendText", "status": 503, "count": 1}),
        json!({"path": "/v1/sendText", "status": 502, "count": 1}),
        json!({"path": "/v1/sendText", "drop": true, "count": 1}),
    ] {
        app.sim_fault(fault.clone()).await;
        let res = app.tenant_post(&tenant, "/v1/sendText", text()).await;
        assert!(res.status().is_server_error(), "{fault}: {}", res.status());
    }
    // Four sends, four calls: none repeated.
    assert_eq!(calls_to(&app.sim_log().await, "/v1/sendText"), 4);
    let res = app.tenant_post(&tenant, "/v1/sendText", text()).await;
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn gets_are_retried_on_502_503_429_and_broken_connections() {
    let (app, tenant, upstream) = app_with_session(spawn_app().await).await;
    let path = format!("/v1/sessions/{upstream}");
    for fault in [
        json!({"path": path, "method": "GET", "status": 503, "count": 2}),
        json!({"path": path, "method": "GET", "status": 502, "count": 1}),
        json!({"path": path, "method": "GET", "status": 429, "retryAfter": 1, "count": 1}),
        json!({"path": path, "method": "GET", "drop": true, "count": 1}),
    ] {
        app.clear_sim_log().await;
        app.sim_fault(fault.clone()).await;
        let res = app.tenant_get(&tenant, "/v1/sessions/default").await;
        assert_eq!(res.status(), 200, "{fault}");
        let info: Value = res.json().await.unwrap();
        assert_eq!(info["name"], "default");
        let failures = fault["count"].as_u64().unwrap() as usize;
        assert_eq!(
            calls_to(&app.sim_log().await, &path),
            failures + 1,
            "{fault}: attempts"
        );
    }
    // At most three attempts: the third failure is the answer.
    app.clear_sim_log().await;
    app.sim_fault(json!({"path": path, "method": "GET", "status": 503, "count": 5}))
        .await;
    let res = app.tenant_get(&tenant, "/v1/sessions/default").await;
    assert_eq!(res.status(), 503);
    assert_eq!(calls_to(&app.sim_log().await, &path), 3);
}
