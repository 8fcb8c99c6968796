//! The control API: what the phone and the contacts do, faults, and stopping the simulator.

use super::{answer, assert_error, assert_refusals, Sim};
use crate::helpers::Receiver;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const MESSAGE: &str = "true_1234567890@c.us_3EB0AA";

#[tokio::test]
async fn sim_control_api_fires_reactions_acks_status_changes_and_events() {
    let sim = Sim::start().await;
    let hook = Receiver::answering(200).await;
    sim.working("c").await;
    let events = [
        "message.reaction",
        "message.ack",
        "session.status",
        "call.received",
    ];
    sim.hook("c", &hook.url, json!({"events": events})).await;
    let reaction = json!({"messageId": MESSAGE, "reaction": "👍", "from": "1234567890"});
    let call = json!({"event": "call.received", "payload": {"id": "call1"}});
    for (path, body, status) in [
        ("reaction", reaction, 201),
        ("ack", json!({"messageId": MESSAGE, "ack": 3}), 201),
        ("status", json!({"status": "FAILED"}), 200),
        ("events", call, 201),
    ] {
        let path = format!("/_sim/sessions/c/{path}");
        let (s, body) = sim.control("POST", &path, body).await;
        assert_eq!(s, status, "{path}: {body}");
    }
    let hits = hook.wait_for(4, Duration::from_secs(3)).await;
    assert_eq!(hook.events(), events);
    let payloads: Vec<Value> = hits.iter().map(|h| h.json()["payload"].clone()).collect();
    assert_eq!(
        payloads[0]["reaction"],
        json!({"text": "👍", "messageId": MESSAGE})
    );
    assert_eq!(
        (&payloads[1]["ack"], &payloads[1]["ackName"]),
        (&json!(3), &json!("READ"))
    );
    assert_eq!(payloads[2]["status"], "FAILED");
    assert_eq!(payloads[3]["id"], "call1");
    assert_eq!(sim.status("c").await, "FAILED");
    hook.stop().await;
    sim.stop().await;
}

#[tokio::test]
async fn sim_control_api_refuses_a_bad_ack_a_missing_session_and_a_failed_one() {
    let sim = Sim::start().await;
    sim.working("c").await;
    let (s, err) = sim
        .control(
            "POST",
            "/_sim/sessions/c/ack",
            json!({"messageId": "x", "ack": 9}),
        )
        .await;
    assert_eq!(s, 400);
    assert_error(&err, 400, "ack");
    let (s, _) = sim
        .control("POST", "/_sim/sessions/none/scan", json!({}))
        .await;
    assert_eq!(s, 404);
    let (s, body) = sim
        .control(
            "POST",
            "/_sim/sessions/c/status",
            json!({"status": "FAILED"}),
        )
        .await;
    assert_eq!((s, &body["status"]), (200, &json!("FAILED")));
    let contact = json!({"from": "1234567890", "text": "x"});
    let (s, err) = sim
        .control("POST", "/_sim/sessions/c/incoming", contact)
        .await;
    assert_eq!(s, 422, "a FAILED session receives nothing");
    assert_eq!(err["status"], "FAILED", "{err}");
    sim.stop().await;
}

/// Adds a fault; answers it as listed.
async fn fault(sim: &Sim, fault: Value) -> Value {
    let (s, added) = sim.control("POST", "/_sim/faults", fault).await;
    assert_eq!(s, 201, "{added}");
    added
}

#[tokio::test]
async fn sim_a_status_fault_answers_its_count_of_calls_of_its_method() {
    let sim = Sim::start().await;
    fault(
        &sim,
        json!({"path": "/v1/sessions", "method": "GET", "status": 500, "count": 2}),
    )
    .await;
    let (s, _) = sim.post("/v1/sessions", json!({"name": "f"})).await;
    assert_eq!(s, 201, "the method filter spares POST");
    let faulted = ("GET", "/v1/sessions", None, 500, "");
    assert_refusals(&sim, &[faulted.clone(), faulted]).await;
    assert_eq!(sim.get("/v1/sessions").await.0, 200);
    sim.stop().await;
}

#[tokio::test]
async fn sim_a_429_fault_answers_with_retry_after() {
    let sim = Sim::start().await;
    fault(
        &sim,
        json!({"path": "/v1/sendText", "status": 429, "retryAfter": 3}),
    )
    .await;
    let send = sim
        .v1(reqwest::Method::POST, "/v1/sendText")
        .json(&json!({}));
    let res = send.send().await.unwrap();
    assert_eq!(res.headers()["retry-after"], "3");
    let (s, err) = answer(res).await;
    assert_eq!(s, 429);
    assert_error(&err, 429, "");
    sim.stop().await;
}

#[tokio::test]
async fn sim_a_delay_fault_holds_the_normal_answer() {
    let sim = Sim::start().await;
    sim.ok("POST", "/v1/sessions", Some(json!({"name": "f"})))
        .await;
    fault(
        &sim,
        json!({"path": "/v1/sessions/f", "delayMs": 400, "count": 1}),
    )
    .await;
    let started = Instant::now();
    assert_eq!(sim.get("/v1/sessions/f").await.0, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    sim.stop().await;
}

#[tokio::test]
async fn sim_a_drop_fault_closes_the_connection_without_an_answer() {
    let sim = Sim::start().await;
    sim.ok("POST", "/v1/sessions", Some(json!({"name": "f"})))
        .await;
    fault(&sim, json!({"path": "/v1/sessions/*", "drop": true})).await;
    let req = sim.v1(reqwest::Method::GET, "/v1/sessions/f");
    let err = req.send().await.unwrap_err();
    assert!(err.status().is_none(), "no status: {err:?}");
    sim.stop().await;
}

/// Used-up faults leave the list; the others are cleared one by id, then all at once.
#[tokio::test]
async fn sim_faults_are_listed_and_cleared() {
    let sim = Sim::start().await;
    sim.ok("POST", "/v1/sessions", Some(json!({"name": "f"})))
        .await;
    fault(
        &sim,
        json!({"path": "/v1/sessions", "status": 500, "count": 1}),
    )
    .await;
    assert_eq!(sim.get("/v1/sessions").await.0, 500);
    fault(&sim, json!({"path": "/v1/sendText", "status": 429})).await;
    fault(&sim, json!({"path": "/v1/sessions/*", "drop": true})).await;
    let (s, faults) = sim.control("GET", "/_sim/faults", json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(faults.as_array().unwrap().len(), 2, "{faults}");

    let one = sim.url(&format!(
        "/_sim/faults/{}",
        faults[0]["id"].as_u64().unwrap()
    ));
    assert_eq!(sim.http.delete(one).send().await.unwrap().status(), 204);
    let all = sim
        .http
        .delete(sim.url("/_sim/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(all.status(), 204);
    assert_eq!(sim.get("/v1/sessions/f").await.0, 200);
    assert_eq!(sim.post("/v1/sendText", json!({})).await.0, 400);
    sim.stop().await;
}

#[tokio::test]
async fn sim_a_fault_without_an_effect_is_refused() {
    let sim = Sim::start().await;
    let (s, err) = sim
        .control("POST", "/_sim/faults", json!({"path": "/v1/x"}))
        .await;
    assert_eq!(s, 400);
    assert_error(&err, 400, "at least one");
    sim.stop().await;
}

#[tokio::test]
async fn sim_stops_and_frees_its_port() {
    let sim = Sim::start().await;
    let port = sim.running.port();
    assert_eq!(sim.running.url(), format!("http://127.0.0.1:{port}"));
    sim.stop().await;
    let refused = reqwest::get(format!("http://127.0.0.1:{port}/v1/sessions")).await;
    assert!(refused.is_err(), "still answering: {refused:?}");
    let rebound = std::net::TcpListener::bind(("127.0.0.1", port));
    assert!(rebound.is_ok(), "port {port} still taken: {rebound:?}");
}
