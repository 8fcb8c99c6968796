//! Sessions: the lifecycle, the deprecated calls, listing, and the seed's errors.

use super::{assert_error, assert_refusals, Sim};
use serde_json::{json, Value};

/// The order is the behaviour: a session is created, waits for its scan, works, stops keeping
/// its login, restarts without a scan, and once logged out starts afresh with one.
#[tokio::test]
async fn sim_sessions_follow_the_lifecycle() {
    let sim = Sim::start().await;
    let (s, body) = sim.post("/v1/sessions", json!({"name": "alpha"})).await;
    assert_eq!(
        (s, &body["name"], &body["status"]),
        (201, &json!("alpha"), &json!("STARTING"))
    );
    assert_eq!(sim.status("alpha").await, "SCAN_QR_CODE");

    // A send before the scan: the engine's 422 object (ENGINE.md §1).
    let send = json!({"session": "alpha", "chatId": "1234567890", "text": "hi"});
    let (s, body) = sim.post("/v1/sendText", send.clone()).await;
    assert_eq!(s, 422);
    assert_eq!(
        body,
        json!({
            "error": "Session status is not as expected. Try again later or restart the session",
            "session": "alpha", "status": "SCAN_QR_CODE", "expected": ["WORKING"],
        })
    );
    let (s, body) = sim
        .control(
            "POST",
            "/_sim/sessions/alpha/scan",
            json!({"phone": "15550001111"}),
        )
        .await;
    assert_eq!((s, &body["status"]), (200, &json!("WORKING")));
    assert_eq!(body["me"]["id"], "15550001111@c.us");
    assert_eq!(sim.post("/v1/sendText", send.clone()).await.0, 201);

    // The deprecated stop answers 201 with no body (ENGINE.md §2 row 6).
    let stop = sim
        .post("/v1/sessions/stop", json!({"name": "alpha"}))
        .await;
    assert_eq!(stop, (201, Value::Null));
    assert_eq!(sim.status("alpha").await, "STOPPED");
    let (s, body) = sim.post("/v1/sendText", send).await;
    assert_eq!((s, &body["status"]), (422, &json!("STOPPED")), "{body}");
    // Stop keeps the login: a restart needs no new scan.
    let (s, _) = sim
        .post("/v1/sessions/start", json!({"name": "alpha"}))
        .await;
    assert_eq!(s, 201);
    assert_eq!(sim.status("alpha").await, "WORKING");

    // Stop with logout: true logs out and deletes; a start then begins afresh with a scan.
    let logout = json!({"name": "alpha", "logout": true});
    assert_eq!(
        sim.post("/v1/sessions/stop", logout).await,
        (201, Value::Null)
    );
    assert_eq!(sim.get("/v1/sessions/alpha").await.0, 404);
    sim.ok("POST", "/v1/sessions/start", Some(json!({"name": "alpha"})))
        .await;
    let (_, body) = sim.get("/v1/sessions/alpha").await;
    assert_eq!(
        (&body["status"], &body["me"]),
        (&json!("SCAN_QR_CODE"), &Value::Null)
    );
    sim.stop().await;
}

#[tokio::test]
async fn sim_session_calls_refuse_in_the_seed_error_shape() {
    let sim = Sim::start().await;
    sim.ok("POST", "/v1/sessions", Some(json!({"name": "alpha"})))
        .await;
    assert_refusals(
        &sim,
        &[
            (
                "POST",
                "/v1/sessions",
                Some(json!({"name": "alpha"})),
                409,
                "already exists",
            ),
            ("GET", "/v1/sessions/nope", None, 404, "nope"),
            (
                "POST",
                "/v1/sessions/start",
                Some(json!({})),
                400,
                "name is required",
            ),
            (
                "POST",
                "/v1/sessions",
                Some(json!({"name": "bad name!"})),
                400,
                "",
            ),
            ("GET", "/v1/sessions?all=maybe", None, 400, ""),
        ],
    )
    .await;
    sim.stop().await;
}

/// The deprecated start upserts: a missing session is created and started; one already
/// running is refused (ENGINE.md §2 row 5). The deprecated logout deletes it (row 9).
#[tokio::test]
async fn sim_deprecated_start_creates_a_missing_session_and_logout_deletes_it() {
    let sim = Sim::start().await;
    let ghost = json!({"name": "ghost"});
    let (s, body) = sim.post("/v1/sessions/start", ghost.clone()).await;
    assert_eq!((s, &body["status"]), (201, &json!("STARTING")));
    let (s, body) = sim.post("/v1/sessions/start", ghost.clone()).await;
    assert_eq!(s, 422);
    assert_error(&body, 422, "already started");
    assert_eq!(
        sim.post("/v1/sessions/logout", ghost).await,
        (201, Value::Null)
    );
    assert_eq!(sim.get("/v1/sessions/ghost").await.0, 404);
    sim.stop().await;
}

/// STOPPED sessions are listed only with all=true (ENGINE.md §2 row 1).
#[tokio::test]
async fn sim_stopped_sessions_are_listed_only_with_all() {
    let sim = Sim::start().await;
    sim.ok("POST", "/v1/sessions", Some(json!({"name": "alpha"})))
        .await;
    let beta = json!({"name": "beta", "start": false, "config": {"metadata": {"team": "x"}}});
    assert_eq!(sim.post("/v1/sessions", beta).await.0, 201);
    let names = |list: &Value| -> Vec<Value> {
        let sessions = list.as_array().unwrap().iter();
        sessions.map(|s| s["name"].clone()).collect()
    };
    let (s, list) = sim.get("/v1/sessions").await;
    assert_eq!((s, names(&list)), (200, vec![json!("alpha")]));
    let (s, list) = sim.get("/v1/sessions?all=true").await;
    assert_eq!(
        (s, names(&list)),
        (200, vec![json!("alpha"), json!("beta")])
    );
    assert_eq!(list[1]["status"], "STOPPED");
    assert_eq!(list[1]["config"]["metadata"]["team"], "x");
    sim.stop().await;
}

#[tokio::test]
async fn sim_delete_removes_a_session_once() {
    let sim = Sim::start().await;
    sim.ok("POST", "/v1/sessions", Some(json!({"name": "alpha"})))
        .await;
    assert_eq!(sim.call("DELETE", "/v1/sessions/alpha", None).await.0, 200);
    assert_eq!(sim.call("DELETE", "/v1/sessions/alpha", None).await.0, 404);
    sim.stop().await;
}

/// The seed's create call sends no body: the session is `default`.
#[tokio::test]
async fn sim_create_without_a_body_makes_the_default_session() {
    let sim = Sim::start().await;
    let res = sim
        .v1(reqwest::Method::POST, "/v1/sessions")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.json::<Value>().await.unwrap()["name"], "default");
    sim.stop().await;
}
