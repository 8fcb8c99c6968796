//! The upstream contract: request bodies the engine behind the hosted API accepts, and the
//! answers it gives (docs/UPSTREAM.md, from ENGINE.md), run against the simulator directly and
//! through the gateway. A row the gateway refused locally, or the simulator answered
//! differently from the engine, fails here. A new endpoint or field is one more row.

use crate::helpers::spawn_app;
use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};
use wa_gateway::sim::{RunningSim, SimOptions, Simulator};

/// The session every row runs in (WORKING).
const SESSION: &str = "contract";

/// One call the engine accepts, and what it answers.
struct Row {
    /// Why the row exists (the ENGINE.md fact or conformance item).
    why: &'static str,
    method: Method,
    /// `{session}` stands for the session's name.
    path: &'static str,
    /// A body naming the session in `session` (set by the runner) when it is a send.
    body: Option<Value>,
    status: u16,
    /// What the answer must satisfy, beyond its status.
    answer: fn(&Value) -> bool,
}

fn any(_: &Value) -> bool {
    true
}

fn message(v: &Value) -> bool {
    v["id"].is_string() && v["fromMe"] == true
}

fn result_true(v: &Value) -> bool {
    v == &json!({"result": true})
}

fn png_base64(wrap: Option<usize>, engine: &base64::engine::GeneralPurpose) -> String {
    // Bytes whose base64 has padding and both alphabets' special characters.
    let bytes: Vec<u8> = (0u8..=255).cycle().take(301).collect();
    let encoded = engine.encode(bytes);
    match wrap {
        Some(width) => encoded
            .as_bytes()
            .chunks(width)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\n"),
        None => encoded,
    }
}

fn image(data: String) -> Value {
    json!({"chatId": "1234567890@c.us", "file": {"mimetype": "image/png", "data": data, "filename": "a.png"}})
}

/// A send the engine accepts with 201 and an answer satisfying `answer`.
fn post(why: &'static str, path: &'static str, body: Value, answer: fn(&Value) -> bool) -> Row {
    Row {
        why,
        method: Method::POST,
        path,
        body: Some(body),
        status: 201,
        answer,
    }
}

fn rows() -> Vec<Row> {
    [media_rows(), chat_rows(), send_rows(), answer_rows()]
        .into_iter()
        .flatten()
        .collect()
}

/// Mentions and every base64 form of media (A1, A2).
fn media_rows() -> Vec<Row> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    vec![
        post(
            "A1: sendText mentions [\"all\"] (engine >= 2025.11.1)",
            "/v1/sendText",
            json!({"chatId": "120363024802736123@g.us", "text": "@all hi", "mentions": ["all"]}),
            message,
        ),
        post(
            "A1: mentions by user and hidden id",
            "/v1/sendText",
            json!({"chatId": "120363024802736123@g.us", "text": "hi", "mentions": ["1234567890@c.us", "123456789012345@lid"]}),
            message,
        ),
        post(
            "A2: base64 wrapped at 76 columns (the base64 CLI's output)",
            "/v1/sendImage",
            image(png_base64(Some(76), &STANDARD)),
            message,
        ),
        post(
            "A2: base64 without padding",
            "/v1/sendFile",
            image(png_base64(None, &STANDARD_NO_PAD)),
            message,
        ),
        post(
            "A2: URL-safe base64",
            "/v1/sendImage",
            image(png_base64(None, &URL_SAFE_NO_PAD)),
            message,
        ),
        post(
            "A2: base64 with CRLF line ends and a trailing newline",
            "/v1/sendVoice",
            json!({"chatId": "1234567890", "file": {"mimetype": "audio/ogg; codecs=opus", "data": png_base64(Some(64), &STANDARD).replace('\n', "\r\n") + "\n"}, "convert": false}),
            message,
        ),
    ]
}

/// Every kind of chat id (A3).
fn chat_rows() -> Vec<Row> {
    vec![
        post(
            "A3: status@broadcast (sendSeen on statuses)",
            "/v1/sendSeen",
            json!({"chatId": "status@broadcast", "messageIds": ["false_status@broadcast_3EB0AAAAAAAAAAAAAAAA_1234567890@c.us"], "participant": "1234567890@c.us"}),
            any,
        ),
        post(
            "A3: a hidden-id chat",
            "/v1/sendText",
            json!({"chatId": "123456789012345@lid", "text": "hi"}),
            message,
        ),
        post(
            "A3: a channel",
            "/v1/sendText",
            json!({"chatId": "120363024802736123@newsletter", "text": "hi"}),
            message,
        ),
        post(
            "A3: the seed's @s.whatsapp.net form",
            "/v1/sendText",
            json!({"chatId": "1234567890@s.whatsapp.net", "text": "hi"}),
            message,
        ),
        post(
            "A3: a bare phone number (the engine appends @c.us)",
            "/v1/sendText",
            json!({"chatId": "1234567890", "text": "hi"}),
            message,
        ),
    ]
}

/// Sends with the engine's optional fields (A4 and the rest).
fn send_rows() -> Vec<Row> {
    vec![
        post(
            "A4: reply without reply_to (MessageReplyRequest extends MessageTextRequest)",
            "/v1/reply",
            json!({"chatId": "1234567890@c.us", "text": "hi"}),
            message,
        ),
        post(
            "unknown fields on a message body are forwarded (the engine may know them)",
            "/v1/sendText",
            json!({"chatId": "1234567890@c.us", "text": "hi", "linkPreview": true, "linkPreviewHighQuality": false, "id": "custom-1", "futureField": {"x": 1}}),
            message,
        ),
        post(
            "sendVideo with convert and asNote",
            "/v1/sendVideo",
            json!({"chatId": "1234567890@c.us", "file": {"url": "https://example.com/v.mp4", "mimetype": "video/mp4"}, "convert": true, "asNote": false, "caption": "watch"}),
            message,
        ),
        post(
            "sendLocation without title",
            "/v1/sendLocation",
            json!({"chatId": "1234567890@c.us", "latitude": 38.8937255, "longitude": -77.0969763}),
            message,
        ),
        post(
            "sendContactVcard with a raw vCard",
            "/v1/sendContactVcard",
            json!({"chatId": "1234567890@c.us", "contacts": [{"vcard": "BEGIN:VCARD\nVERSION:3.0\nFN:Jane\nEND:VCARD"}]}),
            message,
        ),
        post(
            "sendPoll",
            "/v1/sendPoll",
            json!({"chatId": "1234567890@c.us", "poll": {"name": "q", "options": ["a", "b"], "multipleAnswers": true}}),
            message,
        ),
    ]
}

/// Calls whose answer's shape is the point (B2, B4, contacts, presence).
fn answer_rows() -> Vec<Row> {
    vec![
        post(
            "B2: startTyping answers {result:true}",
            "/v1/startTyping",
            json!({"chatId": "1234567890@c.us"}),
            result_true,
        ),
        post(
            "B2: stopTyping answers {result:true}",
            "/v1/stopTyping",
            json!({"chatId": "1234567890@c.us"}),
            result_true,
        ),
        post(
            "B2: sendSeen answers 201 (WEBJS: no body)",
            "/v1/sendSeen",
            json!({"chatId": "1234567890@c.us"}),
            any,
        ),
        Row {
            why: "B4: GET /sessions?all=true lists every session",
            method: Method::GET,
            path: "/v1/sessions?all=true",
            body: None,
            status: 200,
            answer: |v| {
                v.as_array()
                    .is_some_and(|a| a.iter().any(|s| s["name"] == SESSION))
            },
        },
        Row {
            why: "contacts/check-exists: chatId omitted when false is fine, present when true",
            method: Method::GET,
            path: "/v1/contacts/check-exists?phone=1234567890&session={session}",
            body: None,
            status: 200,
            answer: |v| v["numberExists"] == true && v["chatId"] == "1234567890@c.us",
        },
        post(
            "presence typing in a chat",
            "/v1/sessions/{session}/presence",
            json!({"presence": "typing", "chatId": "1234567890@c.us"}),
            any,
        ),
    ]
}

/// Runs every row through `call` (which knows where to send it) and reports all failures.
async fn run_rows<F, Fut>(call: F)
where
    F: Fn(Method, String, Option<Value>) -> Fut,
    Fut: std::future::Future<Output = (u16, Value)>,
{
    let mut failures = Vec::new();
    for row in rows() {
        let path = row.path.replace("{session}", SESSION);
        let body = row.body.clone().map(|mut b| {
            if row.path.starts_with("/v1/send")
                || matches!(row.path, "/v1/reply" | "/v1/startTyping" | "/v1/stopTyping")
            {
                b["session"] = json!(SESSION);
            }
            b
        });
        let (status, answer) = call(row.method.clone(), path, body).await;
        if status != row.status || !(row.answer)(&answer) {
            failures.push(format!(
                "{} {}: {status} {answer} (want {}) -- {}",
                row.method, row.path, row.status, row.why
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

async fn answer_of(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, value)
}

async fn sim_with_working_session() -> (RunningSim, reqwest::Client) {
    let sim = Simulator::start(SimOptions::default()).await.unwrap();
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{}/v1/sessions", sim.url()))
        .json(&json!({"name": SESSION}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = http
        .post(format!("{}/_sim/sessions/{SESSION}/scan", sim.url()))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    (sim, http)
}

#[tokio::test]
async fn contract_rows_against_the_simulator() {
    let (sim, http) = sim_with_working_session().await;
    let base = sim.url();
    run_rows(|method, path, body| {
        let mut req = http.request(method, format!("{base}{path}"));
        if let Some(body) = body {
            req = req.json(&body);
        }
        async move { answer_of(req.send().await.unwrap()).await }
    })
    .await;
    sim.stop().await;
}

#[tokio::test]
async fn contract_rows_through_the_gateway() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    app.working_session(&tenant, SESSION).await;
    run_rows(|method, path, body| {
        let mut req = app.call(&tenant, method, &path);
        if let Some(body) = body {
            req = req.json(&body);
        }
        async move { answer_of(req.send().await.unwrap()).await }
    })
    .await;
}

/// Stateful rows: each step uses what an earlier one answered. `call` is the simulator or the
/// gateway; the session is `SESSION`, WORKING.
async fn lifecycle_steps<F, Fut>(call: F)
where
    F: Fn(Method, String, Option<Value>) -> Fut,
    Fut: std::future::Future<Output = (u16, Value)>,
{
    let base = format!("/v1/sessions/{SESSION}");
    let (s, group) = call(
        Method::POST,
        format!("{base}/groups"),
        Some(json!({"name": "Team", "participants": [{"id": "1234567890@c.us"}]})),
    )
    .await;
    assert_eq!(s, 201, "{group}");
    let gid = group["id"].as_str().expect("a group id").to_owned();
    // B8: OAS 2026 declares 200 for the member and admin actions and leave.
    for action in ["participants/add", "admin/promote", "admin/demote"] {
        let (s, answer) = call(
            Method::POST,
            format!("{base}/groups/{gid}/{action}"),
            Some(json!({"participants": [{"id": "9876543210@c.us"}]})),
        )
        .await;
        assert_eq!(s, 200, "{action}: {answer}");
    }
    let (s, _) = call(Method::POST, format!("{base}/groups/{gid}/leave"), None).await;
    assert_eq!(s, 200, "leave");

    // ENGINE.md §6 rows 37 and 39: a channel by its invite code; previews are ChannelMessages.
    let (s, channel) = call(
        Method::POST,
        format!("{base}/channels"),
        Some(json!({"name": "News"})),
    )
    .await;
    assert_eq!(s, 201, "{channel}");
    let cid = channel["id"].as_str().unwrap().to_owned();
    let code = channel["invite"]
        .as_str()
        .and_then(|i| i.rsplit('/').next())
        .unwrap()
        .to_owned();
    let (s, _) = call(
        Method::POST,
        "/v1/sendText".into(),
        Some(json!({"session": SESSION, "chatId": cid, "text": "post"})),
    )
    .await;
    assert_eq!(s, 201);
    let (s, found) = call(Method::GET, format!("{base}/channels/{code}"), None).await;
    assert_eq!((s, &found["id"]), (200, &json!(cid)), "{found}");
    let (s, preview) = call(
        Method::GET,
        format!("{base}/channels/{code}/messages/preview"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{preview}");
    assert_eq!(preview[0]["message"]["body"], "post", "{preview}");

    // B3: the deprecated stop answers 201 with no body and keeps the session, STOPPED and
    // listed only with all=true (B4); the deprecated logout deletes it.
    let (s, answer) = call(
        Method::POST,
        "/v1/sessions/stop".into(),
        Some(json!({"name": SESSION})),
    )
    .await;
    assert_eq!((s, answer), (201, Value::Null));
    let (_, listed) = call(Method::GET, "/v1/sessions".into(), None).await;
    assert_eq!(listed, json!([]), "STOPPED is hidden without all=true");
    let (_, listed) = call(Method::GET, "/v1/sessions?all=true".into(), None).await;
    assert_eq!(listed[0]["status"], "STOPPED", "{listed}");
    // B1: a send to a session that is not WORKING is the engine's 422.
    let (s, refused) = call(
        Method::POST,
        "/v1/sendText".into(),
        Some(json!({"session": SESSION, "chatId": "1234567890", "text": "hi"})),
    )
    .await;
    assert_eq!(s, 422, "{refused}");
    let (s, answer) = call(
        Method::POST,
        "/v1/sessions/logout".into(),
        Some(json!({"name": SESSION})),
    )
    .await;
    assert_eq!((s, answer), (201, Value::Null));
    let (s, _) = call(Method::GET, format!("/v1/sessions/{SESSION}"), None).await;
    assert_eq!(s, 404, "the logout deleted the session");
}

#[tokio::test]
async fn contract_lifecycle_against_the_simulator() {
    let (sim, http) = sim_with_working_session().await;
    let url = sim.url();
    lifecycle_steps(|method, path, body| {
        let mut req = http.request(method, format!("{url}{path}"));
        if let Some(body) = body {
            req = req.json(&body);
        }
        async move { answer_of(req.send().await.unwrap()).await }
    })
    .await;
    // The 422 body is the engine's object, verbatim, with no `message` (ENGINE.md §1; B1).
    let res = http
        .post(format!("{url}/v1/sessions"))
        .json(&json!({"name": "unscanned"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = http
        .post(format!("{url}/v1/sendText"))
        .json(&json!({"session": "unscanned", "chatId": "1234567890", "text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer_of(res).await,
        (
            422,
            json!({
                "error": "Session status is not as expected. Try again later or restart the session",
                "session": "unscanned", "status": "SCAN_QR_CODE", "expected": ["WORKING"],
            })
        )
    );
    sim.stop().await;
}

#[tokio::test]
async fn contract_lifecycle_through_the_gateway() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let upstream = app.working_session(&tenant, SESSION).await;
    lifecycle_steps(|method, path, body| {
        let mut req = app.call(&tenant, method, &path);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let upstream = upstream.clone();
        async move {
            let (status, answer) = answer_of(req.send().await.unwrap()).await;
            assert!(
                !answer.to_string().contains(&upstream),
                "the upstream name leaked: {answer}"
            );
            if status >= 400 {
                // Whatever the engine's body, the tenant gets the error shape.
                assert_eq!(answer["statusCode"], status, "{answer}");
                assert!(answer["message"].is_string(), "{answer}");
            }
            (status, answer)
        }
    })
    .await;
}

/// Authentication rows, on a session showing its QR code (`SCAN_QR_CODE`): any `format` but
/// `raw` is the PNG (ENGINE.md §2 row 7; the seed's `binary` included), and the engine's own
/// pairing call answers 201 `{code}` (§2 row 8). `call` answers the status and content type.
async fn authentication_steps<F, Fut>(call: F, session: &str)
where
    F: Fn(Method, String, Option<Value>) -> Fut,
    Fut: std::future::Future<Output = (u16, String, Value)>,
{
    for format in ["", "?format=image", "?format=binary", "?format=svg"] {
        let (s, content_type, _) =
            call(Method::GET, format!("/v1/{session}/auth/qr{format}"), None).await;
        assert_eq!((s, content_type.as_str()), (200, "image/png"), "{format}");
    }
    let (s, _, raw) = call(
        Method::GET,
        format!("/v1/{session}/auth/qr?format=raw"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert!(raw["value"].is_string(), "{raw}");
    let (s, _, code) = call(
        Method::POST,
        format!("/v1/{session}/auth/request-code"),
        Some(json!({"phoneNumber": "12132132130"})),
    )
    .await;
    assert_eq!(s, 201, "{code}");
    assert_eq!(code["code"].as_str().map(str::len), Some(9), "{code}");
}

async fn typed_answer(res: reqwest::Response) -> (u16, String, Value) {
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = res.bytes().await.unwrap();
    (
        status,
        content_type,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn contract_authentication_against_the_simulator_and_through_the_gateway() {
    let sim = Simulator::start(SimOptions::default()).await.unwrap();
    let http = reqwest::Client::new();
    let url = sim.url();
    let res = http
        .post(format!("{url}/v1/sessions"))
        .json(&json!({"name": "pairing"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    authentication_steps(
        |method, path, body| {
            let mut req = http.request(method, format!("{url}{path}"));
            if let Some(body) = body {
                req = req.json(&body);
            }
            async move { typed_answer(req.send().await.unwrap()).await }
        },
        "pairing",
    )
    .await;
    sim.stop().await;

    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let res = app
        .tenant_post(&tenant, "/v1/sessions", json!({"name": "pairing"}))
        .await;
    assert_eq!(res.status(), 201);
    authentication_steps(
        |method, path, body| {
            let mut req = app.call(&tenant, method, &path);
            if let Some(body) = body {
                req = req.json(&body);
            }
            async move { typed_answer(req.send().await.unwrap()).await }
        },
        "pairing",
    )
    .await;
    // The seed's pairing call names no parameter (A5): the gateway forwards it without one and
    // lets the upstream decide.
    app.clear_sim_log().await;
    let res = app
        .tenant_get(&tenant, "/v1/pairing/auth/pairing-code")
        .await;
    assert_eq!(res.status(), 400, "the simulator wants phoneNumber");
    assert_eq!(
        app.sim_log().await.len(),
        1,
        "forwarded, not refused locally"
    );
}
