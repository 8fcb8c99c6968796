//! Webhooks as the upstream sends them: registration, the signed WAHA envelope, default
//! events, removal and the three retry policies.

use super::{assert_refusals, Sim};
use crate::helpers::{Hit, Receiver};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;
use wa_gateway::sim::webhook_signature;

#[tokio::test]
async fn sim_webhook_registration_needs_a_url_and_a_session() {
    let sim = Sim::start().await;
    sim.ok("POST", "/v1/sessions", Some(json!({"name": "w"})))
        .await;
    let nowhere = json!({"webhookUrl": "http://127.0.0.1:9/hook"});
    assert_refusals(
        &sim,
        &[
            (
                "POST",
                "/v1/sessions/w/webhooks",
                Some(json!({"events": ["message"]})),
                400,
                "webhookUrl is required",
            ),
            (
                "POST",
                "/v1/sessions/nope/webhooks",
                Some(nowhere),
                404,
                "nope",
            ),
        ],
    )
    .await;
    sim.stop().await;
}

/// What every delivery of the signed registration carries.
fn assert_signed_envelope(hit: &Hit) {
    let envelope = hit.json();
    assert!(
        envelope["id"].as_str().unwrap().starts_with("evt_"),
        "{envelope}"
    );
    assert_eq!(envelope["session"], "w");
    assert_eq!(envelope["engine"], "WEBJS");
    assert_eq!(envelope["metadata"], json!({"user.id": "42"}));
    assert_eq!(envelope["environment"]["tier"], "PLUS");
    let ts = envelope["timestamp"].as_i64().unwrap();
    assert!(ts > 1_700_000_000_000, "milliseconds");
    let header_ts: i64 = hit.header("x-webhook-timestamp").parse().unwrap();
    assert!((header_ts - ts).abs() < 60_000);
    let signature = webhook_signature("my-secret-key", &hit.body);
    assert_eq!(hit.header("x-webhook-hmac"), signature);
    assert_eq!(hit.header("x-webhook-hmac-algorithm"), "sha512");
    assert_eq!(hit.header("x-token"), "abc");
    assert_eq!(hit.header("content-type"), "application/json");
}

#[tokio::test]
async fn sim_webhooks_deliver_signed_waha_envelopes_in_order() {
    let sim = Sim::start().await;
    let hook = Receiver::answering(200).await;
    let created = json!({"name": "w", "config": {"metadata": {"user.id": "42"}}});
    sim.ok("POST", "/v1/sessions", Some(created)).await;
    let registration = json!({
        "webhookUrl": hook.url,
        "events": ["message", "message.any", "message.ack", "session.status"],
        "hmacKey": "my-secret-key",
        "customHeaders": [{"name": "X-Token", "value": "abc"}],
    });
    let (s, reg) = sim.post("/v1/sessions/w/webhooks", registration).await;
    assert_eq!((s, &reg["webhookUrl"]), (201, &json!(hook.url)));
    assert_ne!(reg["hmacKey"], "my-secret-key", "the key is never echoed");

    sim.scan("w").await;
    let out = json!({"session": "w", "chatId": "1234567890", "text": "out"});
    sim.ok("POST", "/v1/sendText", Some(out)).await;
    sim.incoming("w", "in").await;
    let hits = hook.wait_for(5, Duration::from_secs(5)).await;
    let order = [
        "session.status",
        "message.any",
        "message.ack",
        "message",
        "message.any",
    ];
    assert_eq!(hook.events(), order);
    // The scan goes straight to WORKING: the engine has no AUTHENTICATED (ENGINE.md §10.4).
    assert_eq!(hits[0].json()["payload"]["status"], "WORKING");
    hits.iter().for_each(assert_signed_envelope);
    let ids: HashSet<_> = hits.iter().map(|h| h.json()["id"].clone()).collect();
    assert_eq!(ids.len(), 5, "event ids are unique");
    let requests: HashSet<_> = hits
        .iter()
        .map(|h| h.header("x-webhook-request-id"))
        .collect();
    assert_eq!(requests.len(), 5, "request ids are unique");

    let sent = hits[1].json();
    assert_eq!(sent["payload"]["body"], "out");
    assert_eq!(sent["me"]["id"], sent["payload"]["from"]);
    assert_eq!(hits[2].json()["payload"]["id"], sent["payload"]["id"]);
    let incoming = hits[3].json()["payload"].clone();
    assert_eq!(incoming["from"], "1234567890@c.us");
    assert_eq!(
        (&incoming["fromMe"], &incoming["body"]),
        (&json!(false), &json!("in"))
    );
    hook.stop().await;
    sim.stop().await;
}

#[tokio::test]
async fn sim_a_removed_webhook_gets_no_more_deliveries() {
    let sim = Sim::start().await;
    let hook = Receiver::answering(200).await;
    sim.working("w").await;
    sim.hook("w", &hook.url, json!({"events": ["message"]}))
        .await;
    sim.incoming("w", "first").await;
    hook.wait_for(1, Duration::from_secs(5)).await;

    let path = format!("/v1/sessions/w/webhooks?webhookUrl={}", hook.url);
    assert_eq!(sim.call("DELETE", &path, None).await.0, 200);
    let (s, view) = sim.control("GET", "/_sim/sessions/w", json!({})).await;
    assert_eq!((s, &view["webhooks"]), (200, &json!([])));
    sim.incoming("w", "again").await;
    sim.drained().await;
    assert_eq!(hook.hits().len(), 1);
    hook.stop().await;
    sim.stop().await;
}

#[tokio::test]
async fn sim_webhook_default_events_are_message_only_and_unsigned_without_a_key() {
    let sim = Sim::start().await;
    let hook = Receiver::answering(200).await;
    sim.working("d").await;
    sim.hook("d", &hook.url, json!({})).await;
    let text = json!({"session": "d", "chatId": "1234567890", "text": "x"});
    sim.ok("POST", "/v1/sendText", Some(text)).await;
    sim.incoming("d", "y").await;
    let hits = hook.wait_for(1, Duration::from_secs(3)).await;
    sim.drained().await;
    assert_eq!(hook.events(), ["message"]);
    assert_eq!(hits[0].header("x-webhook-hmac"), "");
    assert!(!hits[0].header("x-webhook-request-id").is_empty());
    hook.stop().await;
    sim.stop().await;
}

/// Every attempt at one event for a receiver that answers 500, once the simulator is done
/// (so no attempt beyond the policy's is missed).
async fn attempts(retries: &Value, expected: usize) -> Vec<Hit> {
    let sim = Sim::start().await;
    let hook = Receiver::answering(500).await;
    sim.working("rt").await;
    let registration = json!({"events": ["message"], "retries": retries});
    sim.hook("rt", &hook.url, registration).await;
    sim.incoming("rt", "r").await;
    hook.wait_for(expected, Duration::from_secs(15)).await;
    sim.drained().await;
    let hits = hook.hits();
    assert_eq!(hits.len(), expected, "no attempt beyond the policy's");
    hook.stop().await;
    sim.stop().await;
    hits
}

/// Asserts the gaps between attempts (seconds) are each `expected` within `jitter`, plus up to
/// 0.25 s for the attempt itself, and answers the attempts. A timer never fires early, so
/// every run must keep the lower bounds; a loaded machine can only lengthen a gap, so a run
/// with one gap too long is made again, up to three runs.
async fn assert_spacing(retries: Value, expected: &[f64], jitter: f64) -> Vec<Hit> {
    for run in 1..=3 {
        let hits = attempts(&retries, expected.len() + 1).await;
        let gaps: Vec<f64> = hits
            .windows(2)
            .map(|w| (w[1].at - w[0].at).as_secs_f64())
            .collect();
        let pairs = || gaps.iter().zip(expected);
        for (got, want) in pairs() {
            let low = want * (1.0 - jitter) - 0.02;
            assert!(*got >= low, "gap {got:.3}s, expected {want}s: {gaps:?}");
        }
        if pairs().all(|(got, want)| *got <= want * (1.0 + jitter) + 0.25) {
            return hits;
        }
        assert!(
            run < 3,
            "a gap too long in three runs, expected {expected:?}: {gaps:?}"
        );
    }
    unreachable!("the third run returns or fails")
}

#[tokio::test]
async fn sim_webhook_constant_retries_are_evenly_spaced() {
    let retries = json!({"policy": "constant", "delaySeconds": 0.4, "attempts": 4});
    let hits = assert_spacing(retries, &[0.4, 0.4, 0.4], 0.0).await;
    // Same event, a new request id per attempt.
    let ids: HashSet<_> = hits.iter().map(|h| h.json()["id"].clone()).collect();
    assert_eq!(ids.len(), 1);
    let requests: HashSet<_> = hits
        .iter()
        .map(|h| h.header("x-webhook-request-id"))
        .collect();
    assert_eq!(requests.len(), 4);
}

#[tokio::test]
async fn sim_webhook_linear_retries_grow_by_the_delay() {
    let retries = json!({"policy": "linear", "delaySeconds": 0.3, "attempts": 4});
    assert_spacing(retries, &[0.3, 0.6, 0.9], 0.0).await;
}

#[tokio::test]
async fn sim_webhook_exponential_retries_double_with_jitter() {
    let retries = json!({"policy": "exponential", "delaySeconds": 0.3, "attempts": 4});
    assert_spacing(retries, &[0.3, 0.6, 1.2], 0.2).await;
}
