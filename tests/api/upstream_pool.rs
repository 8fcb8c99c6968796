//! Calls in flight to the upstream are bounded by `WAGW_UPSTREAM_MAX_CONNECTIONS`, shared
//! among the workers, and by nothing smaller: past the bound a call waits for a pooled
//! connection instead of failing.

use crate::helpers::*;
use serde_json::json;
use std::time::Duration;

/// How many of `calls` concurrent `GET /v1/sessions` the upstream holds at once while it
/// delays each answer, and whether every call still answered 200.
async fn held_at_once(max_connections: &str, calls: usize) -> (usize, bool) {
    let app = spawn_app_with(|vars| {
        vars.insert("WAGW_WORKERS".into(), "1".into());
        vars.insert(
            "WAGW_UPSTREAM_MAX_CONNECTIONS".into(),
            max_connections.into(),
        );
        // The organisation's per-second budget would pace the calls before the pool does.
        vars.insert("WAGW_UPSTREAM_RPS".into(), "1000".into());
    })
    .await;
    let tenant = app.tenant().await;
    app.sim_fault(json!({"path": "/v1/sessions", "method": "GET", "delayMs": 3000}))
        .await;
    app.clear_sim_log().await;
    let pending: Vec<_> = (0..calls)
        .map(|_| {
            app.call(&tenant, reqwest::Method::GET, "/v1/sessions")
                .send()
        })
        .collect();
    let answers = tokio::spawn(futures_util::future::join_all(pending));
    // The first calls reach the upstream at once; the upstream logs a call when it arrives.
    let arrived = || async { app.sim_count("GET", "/v1/sessions").await };
    eventually(Duration::from_secs(5), || async {
        arrived().await >= calls.min(max_connections.parse().unwrap())
    })
    .await;
    // reason: calls past the bound must not arrive while the first ones are held (3 s);
    // a second is far longer than a loopback connection takes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let held = arrived().await;
    let all_ok = answers
        .await
        .unwrap()
        .into_iter()
        .all(|r| r.is_ok_and(|r| r.status() == 200));
    (held, all_ok)
}

#[tokio::test]
async fn calls_past_the_pool_bound_wait_for_a_connection_and_still_answer() {
    let (held, all_ok) = held_at_once("3", 6).await;
    assert_eq!(held, 3, "only the configured 3 calls are in flight at once");
    assert!(
        all_ok,
        "the calls that waited for a connection still answered 200"
    );
}
