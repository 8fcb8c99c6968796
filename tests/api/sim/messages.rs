//! Messages: every send, seen and typing, and how a send is refused.

use super::{assert_refusals, Sim};
use crate::helpers::{Hit, Receiver};
use serde_json::{json, Value};
use std::time::Duration;

fn is_message_id(id: &str, chat: &str) -> bool {
    let Some(rest) = id.strip_prefix(&format!("true_{chat}_")) else {
        return false;
    };
    rest.len() == 20 && rest.starts_with("3EB0") && rest.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Each send's own fields (with `chatId` added) and the message its 400 names without them.
fn sends() -> Vec<(&'static str, Value, &'static str)> {
    let file = json!({"url": "https://example.com/a.jpg", "mimetype": "image/jpeg"});
    let voice = json!({"data": "AAAA", "mimetype": "audio/ogg"});
    vec![
        ("/v1/sendText", json!({"text": "hello"}), "text is required"),
        (
            "/v1/sendImage",
            json!({"file": file, "caption": "c"}),
            "file is required",
        ),
        ("/v1/sendFile", json!({"file": file}), "file is required"),
        ("/v1/sendVideo", json!({"file": file}), "file is required"),
        ("/v1/sendVoice", json!({"file": voice}), "file is required"),
        (
            "/v1/sendLocation",
            json!({"latitude": 38.9, "longitude": -77.1}),
            "latitude is required",
        ),
        (
            "/v1/sendContactVcard",
            json!({"contacts": [{"fullName": "J"}]}),
            "contacts is required",
        ),
        (
            "/v1/sendPoll",
            json!({"poll": {"name": "Q?", "options": ["a", "b"]}}),
            "poll is required",
        ),
        (
            "/v1/reply",
            json!({"text": "re", "reply_to": "false_1@c.us_AAA"}),
            "text is required",
        ),
    ]
}

#[tokio::test]
async fn sim_every_send_answers_201_with_a_message_and_400_naming_what_is_missing() {
    let sim = Sim::start().await;
    sim.working("default").await;
    for (path, fields, missing) in sends() {
        let mut body = fields;
        body["chatId"] = json!("1234567890");
        let (s, message) = sim.post(path, body.clone()).await;
        assert_eq!(s, 201, "{path}: {message}");
        let id = message["id"].as_str().unwrap();
        assert!(is_message_id(id, "1234567890@c.us"), "{message}");
        assert_eq!(message["to"], "1234567890@c.us");
        assert_eq!(message["fromMe"], true);
        assert!(message["timestamp"].as_i64().unwrap() > 1_700_000_000);
        for field in ["from", "body", "hasMedia", "ack"] {
            assert!(message.get(field).is_some(), "{path}: {field} in {message}");
        }
        body.as_object_mut().unwrap().remove("chatId");
        let chat_only = Some(json!({"chatId": "1234567890"}));
        let cases = [
            ("POST", path, Some(body), 400, "chatId is required"),
            ("POST", path, chat_only, 400, missing),
        ];
        assert_refusals(&sim, &cases).await;
    }
    sim.stop().await;
}

/// sendSeen and typing send no message, so no message events (ENGINE.md §4 rows 21-23):
/// typing answers {"result": true}, sendSeen 201 with no body (WEBJS).
#[tokio::test]
async fn sim_seen_and_typing_answer_as_the_engine_and_fire_no_message_events() {
    let sim = Sim::start().await;
    sim.working("default").await;
    let receiver = Receiver::answering(200).await;
    let events = json!({"events": ["message.any", "message.ack"]});
    sim.hook("default", &receiver.url, events).await;
    for (path, answer) in [
        ("/v1/sendSeen", Value::Null),
        ("/v1/startTyping", json!({"result": true})),
        ("/v1/stopTyping", json!({"result": true})),
    ] {
        let got = sim.post(path, json!({"chatId": "1234567890"})).await;
        assert_eq!(got, (201, answer), "{path}");
        assert_refusals(
            &sim,
            &[("POST", path, Some(json!({})), 400, "chatId is required")],
        )
        .await;
    }
    let after = json!({"chatId": "1234567890", "text": "after"});
    assert_eq!(sim.post("/v1/sendText", after).await.0, 201);
    receiver.wait_for(2, Duration::from_secs(5)).await;
    sim.drained().await;
    let bodies: Vec<Value> = receiver.hits().iter().map(Hit::json).collect();
    assert_eq!(bodies.len(), 2, "only the text's two events: {bodies:?}");
    assert!(bodies
        .iter()
        .all(|b| b["payload"]["to"] == "1234567890@c.us"));
    assert_eq!(bodies[0]["payload"]["body"], "after", "{bodies:?}");
    receiver.stop().await;
    sim.stop().await;
}

#[tokio::test]
async fn sim_sends_refuse_a_bad_chat_id_an_unknown_session_and_broken_json() {
    let sim = Sim::start().await;
    sim.working("default").await;
    let bad_chat = json!({"chatId": "1@x.y", "text": "t"});
    let unknown = json!({"chatId": "1234567", "text": "t", "session": "zzz"});
    assert_refusals(
        &sim,
        &[
            ("POST", "/v1/sendText", Some(bad_chat), 400, "chatId"),
            ("POST", "/v1/sendText", Some(unknown), 404, "zzz"),
        ],
    )
    .await;
    let res = sim
        .v1(reqwest::Method::POST, "/v1/sendText")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    sim.stop().await;
}

#[tokio::test]
async fn sim_typing_shows_in_the_presence() {
    let sim = Sim::start().await;
    sim.working("default").await;
    for path in ["/v1/startTyping", "/v1/stopTyping"] {
        sim.ok("POST", path, Some(json!({"chatId": "1234567890"})))
            .await;
    }
    let (s, presence) = sim.get("/v1/sessions/default/presence").await;
    assert_eq!(s, 200);
    assert_eq!(presence[0]["id"], "1234567890@c.us");
    assert_eq!(presence[0]["presences"][0]["lastKnownPresence"], "paused");
    sim.stop().await;
}

#[tokio::test]
async fn sim_reads_chunked_bodies_and_logs_calls_faithfully() {
    let sim = Sim::start().await;
    sim.working("default").await;
    let chunks: Vec<Result<&'static str, std::io::Error>> = vec![
        Ok(r#"{"chatId":"1234567890","#),
        Ok(r#""text":"chunked hello"}"#),
    ];
    let res = sim
        .v1(reqwest::Method::POST, "/v1/sendText?trace=1")
        .header("content-type", "application/json")
        .header("x-custom", "kept")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.json::<Value>().await.unwrap()["body"], "chunked hello");

    let entry = sim.log().await.last().unwrap().clone();
    assert_eq!(entry["method"], "POST");
    assert_eq!(entry["path"], "/v1/sendText");
    assert_eq!(entry["query"], "trace=1");
    assert_eq!(
        entry["body"],
        r#"{"chatId":"1234567890","text":"chunked hello"}"#
    );
    assert_eq!(entry["headers"]["x-custom"], "kept");
    assert_eq!(entry["headers"]["x-rapidapi-key"], super::KEY);
    assert_eq!(entry["headers"]["transfer-encoding"], "chunked");
    assert_eq!(entry["status"], 201);
    assert!(entry["time"].as_str().unwrap().ends_with('Z'));
    sim.stop().await;
}

/// The control API is not logged; reset clears the log and the sessions.
#[tokio::test]
async fn sim_reset_clears_the_log_and_the_sessions() {
    let sim = Sim::start().await;
    sim.working("default").await;
    assert!(!sim.log().await.is_empty());
    assert_eq!(sim.control("POST", "/_sim/reset", json!({})).await.0, 200);
    assert_eq!(sim.log().await, Vec::<Value>::new());
    assert_eq!(sim.get("/v1/sessions/default").await.0, 404);
    sim.stop().await;
}

#[tokio::test]
async fn sim_undeclared_method_and_unknown_path_answer_in_the_error_shape() {
    let sim = Sim::start().await;
    assert_refusals(
        &sim,
        &[
            ("GET", "/v1/sendText", None, 405, "GET"),
            ("PATCH", "/v1/sessions", None, 405, "PATCH"),
            (
                "GET",
                "/v1/nothing/here/at/all",
                None,
                404,
                "/v1/nothing/here/at/all",
            ),
        ],
    )
    .await;
    sim.stop().await;
}
