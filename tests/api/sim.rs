//! The upstream simulator against the seed, endpoint by endpoint, plus its webhooks, control
//! API, faults and the sandbox mode of the real binary.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wa_gateway::sim::{webhook_signature, RunningSim, SimOptions, Simulator};

const KEY: &str = "sim-test-key";
const HOST: &str = "whatsapp-messaging-bot.p.rapidapi.com";

struct Sim {
    running: RunningSim,
    http: reqwest::Client,
}

impl Sim {
    async fn start() -> Self {
        Self::with(SimOptions::default()).await
    }

    async fn with(mut options: SimOptions) -> Self {
        options.key = Some(KEY.into());
        options.host = HOST.into();
        let running = Simulator::start(options).await.expect("simulator starts");
        Self {
            running,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.url())
    }

    fn v1(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .header("x-rapidapi-key", KEY)
            .header("x-rapidapi-host", HOST)
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self.v1(method.parse().unwrap(), path);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("answer");
        let status = res.status();
        let text = res.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON answer: {text}"))
        };
        (status, value)
    }

    async fn control(&self, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let res = self
            .http
            .request(method.parse().unwrap(), self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// A session created, scanned and WORKING.
    async fn working(&self, name: &str) {
        let (s, _) = self
            .call("POST", "/v1/sessions", Some(json!({"name": name})))
            .await;
        assert_eq!(s, 201);
        let (s, body) = self
            .control("POST", &format!("/_sim/sessions/{name}/scan"), json!({}))
            .await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["status"], "WORKING");
    }
}

fn assert_error(body: &Value, status: u16, message: &str) {
    assert_eq!(body["statusCode"], status, "{body}");
    assert!(body["error"].is_string(), "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains(message),
        "expected `{message}` in {body}"
    );
}

fn is_message_id(id: &str, chat: &str) -> bool {
    let Some(rest) = id.strip_prefix(&format!("true_{chat}_")) else {
        return false;
    };
    rest.len() == 20 && rest.starts_with("3EB0") && rest.bytes().all(|b| b.is_ascii_hexdigit())
}

// ---- A webhook receiver ---------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Hit {
    at: Instant,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Hit {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

struct Receiver {
    hits: Arc<Mutex<Vec<Hit>>>,
    url: String,
    handle: actix_web::dev::ServerHandle,
}

impl Receiver {
    /// Answers `status` to every delivery.
    async fn start(status: u16) -> Self {
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let shared = hits.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            let hits = shared.clone();
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let hits = hits.clone();
                async move {
                    let mut headers = reqwest::header::HeaderMap::new();
                    for (k, v) in req.headers() {
                        headers.append(
                            reqwest::header::HeaderName::from_bytes(k.as_str().as_bytes()).unwrap(),
                            reqwest::header::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
                        );
                    }
                    hits.lock().unwrap().push(Hit {
                        at: Instant::now(),
                        headers,
                        body: body.to_vec(),
                    });
                    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
                        .finish()
                }
            }))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            hits,
            url: format!("http://127.0.0.1:{port}/hook"),
            handle,
        }
    }

    /// Waits until `n` deliveries arrived (or `within` passes) and returns them.
    async fn wait_for(&self, n: usize, within: Duration) -> Vec<Hit> {
        let deadline = Instant::now() + within;
        loop {
            let hits = self.hits.lock().unwrap().clone();
            if hits.len() >= n || Instant::now() > deadline {
                return hits;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn events(&self) -> Vec<String> {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .map(|h| h.json()["event"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn stop(self) {
        self.handle.stop(false).await;
    }
}

// ---- Sessions -------------------------------------------------------------------------------

#[tokio::test]
async fn sim_sessions_follow_the_lifecycle_with_the_seed_errors() {
    let sim = Sim::start().await;
    let (s, body) = sim
        .call("POST", "/v1/sessions", Some(json!({"name": "alpha"})))
        .await;
    assert_eq!(s, 201);
    assert_eq!(body["name"], "alpha");
    assert_eq!(body["status"], "STARTING");
    let (s, body) = sim
        .call("POST", "/v1/sessions", Some(json!({"name": "alpha"})))
        .await;
    assert_eq!(s, 409);
    assert_error(&body, 409, "already exists");
    let (s, body) = sim.call("GET", "/v1/sessions/alpha", None).await;
    assert_eq!(
        (s, body["status"].as_str()),
        (StatusCode::OK, Some("SCAN_QR_CODE"))
    );
    let (s, body) = sim.call("GET", "/v1/sessions/nope", None).await;
    assert_eq!(s, 404);
    assert_error(&body, 404, "nope");
    let (s, body) = sim
        .call("POST", "/v1/sessions/start", Some(json!({})))
        .await;
    assert_eq!(s, 400);
    assert_error(&body, 400, "name is required");
    // The deprecated start upserts: a missing session is created and started; one already
    // running is refused (ENGINE.md §2 row 5).
    let (s, body) = sim
        .call("POST", "/v1/sessions/start", Some(json!({"name": "ghost"})))
        .await;
    assert_eq!(
        (s.as_u16(), body["status"].as_str()),
        (201, Some("STARTING"))
    );
    let (s, body) = sim
        .call("POST", "/v1/sessions/start", Some(json!({"name": "ghost"})))
        .await;
    assert_eq!(s, 422);
    assert_error(&body, 422, "already started");
    // The deprecated logout deletes it (ENGINE.md §2 row 9): 201 with no body.
    let (s, body) = sim
        .call(
            "POST",
            "/v1/sessions/logout",
            Some(json!({"name": "ghost"})),
        )
        .await;
    assert_eq!((s.as_u16(), body), (201, Value::Null));
    let (s, _) = sim.call("GET", "/v1/sessions/ghost", None).await;
    assert_eq!(s, 404);

    // A send before the scan: the engine's 422 object (ENGINE.md §1).
    let send = json!({"session": "alpha", "chatId": "1234567890", "text": "hi"});
    let (s, body) = sim.call("POST", "/v1/sendText", Some(send.clone())).await;
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
    assert_eq!(s, 200);
    assert_eq!(body["status"], "WORKING");
    assert_eq!(body["me"]["id"], "15550001111@c.us");
    let (s, _) = sim.call("POST", "/v1/sendText", Some(send.clone())).await;
    assert_eq!(s, 201);

    // The deprecated stop answers 201 with no body (ENGINE.md §2 row 6).
    let (s, body) = sim
        .call("POST", "/v1/sessions/stop", Some(json!({"name": "alpha"})))
        .await;
    assert_eq!((s.as_u16(), body), (201, Value::Null));
    let (_, body) = sim.call("GET", "/v1/sessions/alpha", None).await;
    assert_eq!(body["status"], "STOPPED");
    let (s, body) = sim.call("POST", "/v1/sendText", Some(send.clone())).await;
    assert_eq!(s, 422);
    assert_eq!(body["status"], "STOPPED", "{body}");
    // Stop keeps the login: a restart needs no new scan.
    let (s, _) = sim
        .call("POST", "/v1/sessions/start", Some(json!({"name": "alpha"})))
        .await;
    assert_eq!(s, 201);
    let (_, body) = sim.call("GET", "/v1/sessions/alpha", None).await;
    assert_eq!(body["status"], "WORKING");
    // Stop with logout: true logs out and deletes; a start then begins afresh with a scan.
    let (s, body) = sim
        .call(
            "POST",
            "/v1/sessions/stop",
            Some(json!({"name": "alpha", "logout": true})),
        )
        .await;
    assert_eq!((s.as_u16(), body), (201, Value::Null));
    let (s, _) = sim.call("GET", "/v1/sessions/alpha", None).await;
    assert_eq!(s, 404);
    sim.call("POST", "/v1/sessions/start", Some(json!({"name": "alpha"})))
        .await;
    let (_, body) = sim.call("GET", "/v1/sessions/alpha", None).await;
    assert_eq!(body["status"], "SCAN_QR_CODE");
    assert_eq!(body["me"], Value::Null);

    let (s, _) = sim
        .call(
            "POST",
            "/v1/sessions",
            Some(json!({"name": "beta", "start": false, "config": {"metadata": {"team": "x"}}})),
        )
        .await;
    assert_eq!(s, 201);
    // STOPPED sessions are listed only with all=true (ENGINE.md §2 row 1).
    let names = |list: &Value| -> Vec<Value> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].clone())
            .collect()
    };
    let (s, list) = sim.call("GET", "/v1/sessions", None).await;
    assert_eq!(s, 200);
    assert_eq!(names(&list), [json!("alpha")]);
    let (s, list) = sim.call("GET", "/v1/sessions?all=true", None).await;
    assert_eq!(s, 200);
    assert_eq!(names(&list), [json!("alpha"), json!("beta")]);
    assert_eq!(list[1]["status"], "STOPPED");
    assert_eq!(list[1]["config"]["metadata"]["team"], "x");
    let (s, _) = sim.call("GET", "/v1/sessions?all=maybe", None).await;
    assert_eq!(s, 400);

    let (s, _) = sim
        .call("POST", "/v1/sessions", Some(json!({"name": "bad name!"})))
        .await;
    assert_eq!(s, 400);
    let (s, _) = sim.call("DELETE", "/v1/sessions/alpha", None).await;
    assert_eq!(s, 200);
    let (s, _) = sim.call("DELETE", "/v1/sessions/alpha", None).await;
    assert_eq!(s, 404);
    // The seed's create call sends no body: the session is `default`.
    let res = sim
        .v1(reqwest::Method::POST, "/v1/sessions")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.json::<Value>().await.unwrap()["name"], "default");
    sim.running.stop().await;
}

#[tokio::test]
async fn sim_qr_code_comes_in_every_format_and_pairing_code_works() {
    let sim = Sim::start().await;
    sim.call("POST", "/v1/sessions", Some(json!({"name": "q"})))
        .await;
    let (s, raw) = sim.call("GET", "/v1/q/auth/qr?format=raw", None).await;
    assert_eq!(s, 200);
    assert!(raw["value"].as_str().unwrap().starts_with("2@"), "{raw}");

    // Any format but `raw` is the image (ENGINE.md §2 row 7), the seed's `binary` included.
    for query in ["", "?format=image", "?format=binary", "?format=svg"] {
        let res = sim
            .v1(reqwest::Method::GET, &format!("/v1/q/auth/qr{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "image/png");
        let png = res.bytes().await.unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{query}");
    }
    let res = sim
        .v1(reqwest::Method::GET, "/v1/q/auth/qr")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["mimetype"], "image/png");
    use base64::Engine;
    let png = base64::engine::general_purpose::STANDARD
        .decode(body["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
    // JSON only for exactly `application/json`: axios' default Accept gets the PNG.
    let res = sim
        .v1(reqwest::Method::GET, "/v1/q/auth/qr")
        .header("accept", "application/json, text/plain, */*")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "image/png");
    let (s, body) = sim.call("GET", "/v1/nope/auth/qr", None).await;
    assert_eq!(s, 404);
    assert_error(&body, 404, "nope");

    let (s, body) = sim.call("GET", "/v1/q/auth/pairing-code", None).await;
    assert_eq!(s, 400);
    assert_error(&body, 400, "phoneNumber is required");
    let (s, body) = sim
        .call(
            "GET",
            "/v1/q/auth/pairing-code?phoneNumber=12132132130",
            None,
        )
        .await;
    assert_eq!(s, 200);
    let code = body["code"].as_str().unwrap();
    assert_eq!(code.len(), 9);
    assert_eq!(&code[4..5], "-");
    // The engine's own call answers the same, 201 (ENGINE.md §2 row 8).
    let (s, body) = sim
        .call(
            "POST",
            "/v1/q/auth/request-code",
            Some(json!({"phoneNumber": "12132132130"})),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(body["code"].as_str().map(str::len), Some(9), "{body}");
    // The scan logs in the phone the pairing code was asked for.
    let (_, body) = sim
        .control("POST", "/_sim/sessions/q/scan", json!({}))
        .await;
    assert_eq!(body["me"]["id"], "12132132130@c.us");
    let (s, body) = sim.call("GET", "/v1/q/auth/qr", None).await;
    assert_eq!(s, 422);
    assert_eq!(
        (&body["status"], &body["expected"]),
        (&json!("WORKING"), &json!(["SCAN_QR_CODE"])),
        "{body}"
    );
    sim.running.stop().await;
}

#[tokio::test]
async fn sim_auto_scan_logs_in_after_the_qr_is_fetched() {
    let sim = Sim::with(SimOptions {
        auto_scan: Some(Duration::from_millis(300)),
        ..SimOptions::default()
    })
    .await;
    sim.call("POST", "/v1/sessions", Some(json!({"name": "a"})))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, body) = sim.call("GET", "/v1/sessions/a", None).await;
    assert_eq!(body["status"], "SCAN_QR_CODE", "no scan before a fetch");
    let fetched = Instant::now();
    sim.call("GET", "/v1/a/auth/qr?format=raw", None).await;
    let status = loop {
        let (_, body) = sim.call("GET", "/v1/sessions/a", None).await;
        if body["status"] == "WORKING" || fetched.elapsed() > Duration::from_secs(3) {
            break body["status"].clone();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(status, "WORKING");
    assert!(
        fetched.elapsed() >= Duration::from_millis(290),
        "{:?}",
        fetched.elapsed()
    );
    sim.running.stop().await;
}

/// With the engine's wait configured, a call meets a session that becomes WORKING meanwhile
/// (ENGINE.md §1: it polls for up to 5 s before its 422), and the 422 comes after the wait.
#[tokio::test]
async fn sim_status_wait_lets_a_send_meet_a_session_that_becomes_working() {
    let sim = Sim::with(SimOptions {
        auto_scan: Some(Duration::from_millis(300)),
        status_wait: Duration::from_millis(1500),
        ..SimOptions::default()
    })
    .await;
    sim.call("POST", "/v1/sessions", Some(json!({"name": "a"})))
        .await;
    let (s, _) = sim.call("GET", "/v1/a/auth/qr?format=raw", None).await;
    assert_eq!(s, 200);
    let send = json!({"session": "a", "chatId": "1234567890", "text": "hi"});
    let (s, body) = sim.call("POST", "/v1/sendText", Some(send.clone())).await;
    assert_eq!(s, 201, "{body}");
    sim.call("POST", "/v1/sessions/stop", Some(json!({"name": "a"})))
        .await;
    let started = Instant::now();
    let (s, body) = sim.call("POST", "/v1/sendText", Some(send)).await;
    assert_eq!((s.as_u16(), &body["status"]), (422, &json!("STOPPED")));
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "{:?}",
        started.elapsed()
    );
    sim.running.stop().await;
}

#[tokio::test]
async fn sim_qr_codes_rotate_then_the_session_fails() {
    let sim = Sim::with(SimOptions {
        qr_first_ttl: Duration::from_millis(300),
        qr_ttl: Duration::from_millis(150),
        max_qr_codes: 3,
        ..SimOptions::default()
    })
    .await;
    let hook = Receiver::start(200).await;
    sim.call(
        "POST",
        "/v1/sessions",
        Some(json!({"name": "r", "start": false})),
    )
    .await;
    sim.call(
        "POST",
        "/v1/sessions/r/webhooks",
        Some(json!({"webhookUrl": hook.url, "events": ["session.status"]})),
    )
    .await;
    sim.call("POST", "/v1/sessions/start", Some(json!({"name": "r"})))
        .await;
    let (_, first) = sim.call("GET", "/v1/r/auth/qr?format=raw", None).await;
    tokio::time::sleep(Duration::from_millis(350)).await;
    let (_, second) = sim.call("GET", "/v1/r/auth/qr?format=raw", None).await;
    assert_ne!(
        first["value"], second["value"],
        "a new code after the first's lifetime"
    );
    let hits = hook.wait_for(5, Duration::from_secs(3)).await;
    let statuses: Vec<_> = hits
        .iter()
        .map(|h| h.json()["payload"]["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        [
            json!("STARTING"),
            json!("SCAN_QR_CODE"),
            json!("SCAN_QR_CODE"),
            json!("SCAN_QR_CODE"),
            json!("FAILED")
        ]
    );
    let (_, body) = sim.call("GET", "/v1/sessions/r", None).await;
    assert_eq!(body["status"], "FAILED");
    hook.stop().await;
    sim.running.stop().await;
}

// ---- Messages -------------------------------------------------------------------------------

#[tokio::test]
async fn sim_sends_answer_201_with_a_message_and_seen_and_typing_answer_as_the_engine() {
    let sim = Sim::start().await;
    sim.working("default").await;
    let file = json!({"url": "https://example.com/a.jpg", "mimetype": "image/jpeg"});
    let calls = [
        ("/v1/sendText", json!({"text": "hello"}), "text is required"),
        (
            "/v1/sendImage",
            json!({"file": file, "caption": "c"}),
            "file is required",
        ),
        ("/v1/sendFile", json!({"file": file}), "file is required"),
        ("/v1/sendVideo", json!({"file": file}), "file is required"),
        (
            "/v1/sendVoice",
            json!({"file": {"data": "AAAA", "mimetype": "audio/ogg"}}),
            "file is required",
        ),
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
    ];
    for (path, fields, missing) in calls {
        let mut body = fields.clone();
        body["chatId"] = json!("1234567890");
        let (s, message) = sim.call("POST", path, Some(body.clone())).await;
        assert_eq!(s, 201, "{path}: {message}");
        assert!(
            is_message_id(message["id"].as_str().unwrap(), "1234567890@c.us"),
            "{message}"
        );
        assert_eq!(message["to"], "1234567890@c.us");
        assert_eq!(message["fromMe"], true);
        assert!(message["timestamp"].as_i64().unwrap() > 1_700_000_000);
        for field in ["from", "body", "hasMedia", "ack"] {
            assert!(message.get(field).is_some(), "{path}: {field} in {message}");
        }
        // Without chatId: 400 naming it.
        body.as_object_mut().unwrap().remove("chatId");
        let (s, err) = sim.call("POST", path, Some(body)).await;
        assert_eq!(s, 400, "{path}");
        assert_error(&err, 400, "chatId is required");
        let (s, err) = sim
            .call("POST", path, Some(json!({"chatId": "1234567890"})))
            .await;
        assert_eq!(s, 400, "{path}");
        assert_error(&err, 400, missing);
    }
    // sendSeen and typing send no message, so no message events (ENGINE.md §4 rows 21-23):
    // typing answers {"result": true}, sendSeen 201 with no body (WEBJS).
    let receiver = Receiver::start(200).await;
    let (s, _) = sim
        .call(
            "POST",
            "/v1/sessions/default/webhooks",
            Some(json!({"webhookUrl": receiver.url, "events": ["message.any", "message.ack"]})),
        )
        .await;
    assert_eq!(s, 201);
    for (path, answer) in [
        ("/v1/sendSeen", Value::Null),
        ("/v1/startTyping", json!({"result": true})),
        ("/v1/stopTyping", json!({"result": true})),
    ] {
        let mut body = json!({"chatId": "1234567890"});
        let (s, got) = sim.call("POST", path, Some(body.clone())).await;
        assert_eq!((s.as_u16(), got), (201, answer), "{path}");
        body.as_object_mut().unwrap().remove("chatId");
        let (s, err) = sim.call("POST", path, Some(body)).await;
        assert_eq!(s, 400, "{path}");
        assert_error(&err, 400, "chatId is required");
    }
    let (s, _) = sim
        .call(
            "POST",
            "/v1/sendText",
            Some(json!({"chatId": "1234567890", "text": "after"})),
        )
        .await;
    assert_eq!(s, 201);
    let hits = receiver.wait_for(2, Duration::from_secs(5)).await;
    let bodies: Vec<Value> = hits.iter().map(Hit::json).collect();
    assert_eq!(bodies.len(), 2, "only the text's two events: {bodies:?}");
    assert!(bodies
        .iter()
        .all(|b| b["payload"]["to"] == "1234567890@c.us"));
    assert_eq!(bodies[0]["payload"]["body"], "after", "{bodies:?}");
    receiver.stop().await;
    let (s, err) = sim
        .call(
            "POST",
            "/v1/sendText",
            Some(json!({"chatId": "1@x.y", "text": "t"})),
        )
        .await;
    assert_eq!(s, 400);
    assert_error(&err, 400, "chatId");
    let (s, err) = sim
        .call(
            "POST",
            "/v1/sendText",
            Some(json!({"chatId": "1234567", "text": "t", "session": "zzz"})),
        )
        .await;
    assert_eq!(s, 404);
    assert_error(&err, 404, "zzz");
    let res = sim
        .v1(reqwest::Method::POST, "/v1/sendText")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // Typing shows in the presence.
    let (s, presence) = sim.call("GET", "/v1/sessions/default/presence", None).await;
    assert_eq!(s, 200);
    assert_eq!(presence[0]["id"], "1234567890@c.us");
    assert_eq!(presence[0]["presences"][0]["lastKnownPresence"], "paused");
    sim.running.stop().await;
}

#[tokio::test]
async fn sim_reads_chunked_bodies_and_logs_calls_faithfully() {
    let sim = Sim::start().await;
    sim.working("default").await;
    let raw = r#"{"chatId":"1234567890","text":"chunked hello"}"#;
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

    let log: Value = sim
        .http
        .get(sim.url("/_sim/log"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entry = log.as_array().unwrap().last().unwrap().clone();
    assert_eq!(entry["method"], "POST");
    assert_eq!(entry["path"], "/v1/sendText");
    assert_eq!(entry["query"], "trace=1");
    assert_eq!(entry["body"], raw);
    assert_eq!(entry["headers"]["x-custom"], "kept");
    assert_eq!(entry["headers"]["x-rapidapi-key"], KEY);
    assert_eq!(entry["headers"]["transfer-encoding"], "chunked");
    assert_eq!(entry["status"], 201);
    assert!(entry["time"].as_str().unwrap().ends_with('Z'));
    // The control API is not logged; reset clears the log and the sessions.
    let (s, _) = sim.control("POST", "/_sim/reset", json!({})).await;
    assert_eq!(s, 200);
    let log: Value = sim
        .http
        .get(sim.url("/_sim/log"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log, json!([]));
    let (s, _) = sim.call("GET", "/v1/sessions/default", None).await;
    assert_eq!(s, 404);
    sim.running.stop().await;
}

#[tokio::test]
async fn sim_undeclared_method_and_unknown_path_answer_in_the_error_shape() {
    let sim = Sim::start().await;
    let (s, body) = sim.call("GET", "/v1/sendText", None).await;
    assert_eq!(s, 405);
    assert_error(&body, 405, "GET");
    let (s, body) = sim.call("PATCH", "/v1/sessions", None).await;
    assert_eq!(s, 405);
    assert_error(&body, 405, "PATCH");
    let (s, body) = sim.call("GET", "/v1/nothing/here/at/all", None).await;
    assert_eq!(s, 404);
    assert_error(&body, 404, "/v1/nothing/here/at/all");
    sim.running.stop().await;
}

// ---- Plan checks ----------------------------------------------------------------------------

#[tokio::test]
async fn sim_refuses_a_missing_or_wrong_key_or_host_with_401() {
    let sim = Sim::start().await;
    let url = sim.url("/v1/sessions");
    let cases = [
        (None, Some(HOST)),
        (Some("wrong"), Some(HOST)),
        (Some(KEY), None),
        (Some(KEY), Some("example.com")),
    ];
    for (key, host) in cases {
        let mut req = sim.http.get(&url);
        if let Some(key) = key {
            req = req.header("x-rapidapi-key", key);
        }
        if let Some(host) = host {
            req = req.header("x-rapidapi-host", host);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401, "{key:?} {host:?}");
        assert_error(&res.json().await.unwrap(), 401, "");
    }
    let (s, _) = sim.call("GET", "/v1/sessions", None).await;
    assert_eq!(s, 200);
    sim.running.stop().await;
}

#[tokio::test]
async fn sim_per_second_limit_answers_429_with_retry_after() {
    let sim = Sim::with(SimOptions {
        rps: Some(3),
        ..SimOptions::default()
    })
    .await;
    // Align to the start of a second so all calls fall into one window.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    tokio::time::sleep(Duration::from_nanos(
        1_000_000_000 - u64::from(now.subsec_nanos()) + 5_000_000,
    ))
    .await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..6 {
        let res = sim
            .v1(reqwest::Method::GET, "/v1/sessions")
            .send()
            .await
            .unwrap();
        if res.status() == 429 {
            retry_after = res
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            assert_error(&res.json().await.unwrap(), 429, "");
            statuses.push(429);
        } else {
            statuses.push(res.status().as_u16());
        }
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429]);
    let secs: u64 = retry_after
        .expect("Retry-After")
        .parse()
        .expect("whole seconds");
    assert!(secs >= 1);
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let res = sim
        .v1(reqwest::Method::GET, "/v1/sessions")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    sim.running.stop().await;
}

#[tokio::test]
async fn sim_monthly_quota_counts_down_in_rapidapi_headers_then_429() {
    let sim = Sim::with(SimOptions {
        monthly: Some(3),
        ..SimOptions::default()
    })
    .await;
    for remaining in [2, 1, 0] {
        // A call the endpoint refuses still spends quota.
        let res = sim
            .v1(reqwest::Method::GET, "/v1/sessions/missing")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
        assert_eq!(res.headers()["x-ratelimit-requests-limit"], "3");
        assert_eq!(
            res.headers()["x-ratelimit-requests-remaining"],
            remaining.to_string().as_str()
        );
        let reset: u64 = res.headers()["x-ratelimit-requests-reset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=31 * 86_400).contains(&reset));
    }
    let res = sim
        .v1(reqwest::Method::GET, "/v1/sessions")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    assert_eq!(res.headers()["x-ratelimit-requests-remaining"], "0");
    assert_error(&res.json().await.unwrap(), 429, "MONTHLY quota");
    sim.running.stop().await;
}

// ---- Groups, channels, contacts, presence ---------------------------------------------------

#[tokio::test]
async fn sim_groups_channels_contacts_and_presence_are_kept_per_session() {
    let sim = Sim::start().await;
    sim.working("g").await;
    sim.working("other").await;
    let (s, group) = sim
        .call(
            "POST",
            "/v1/sessions/g/groups",
            Some(json!({"name": "My Team", "participants": [{"id": "1234567890@c.us"}]})),
        )
        .await;
    assert_eq!(s, 201);
    let id = group["id"].as_str().unwrap().to_owned();
    assert!(id.ends_with("@g.us"));
    assert_eq!(group["subject"], "My Team");
    let (s, err) = sim
        .call(
            "POST",
            "/v1/sessions/g/groups",
            Some(json!({"participants": [{"id": "1@c.us"}]})),
        )
        .await;
    assert_eq!(s, 400);
    assert_error(&err, 400, "name is required");
    let (_, list) = sim.call("GET", "/v1/sessions/g/groups", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (_, list) = sim.call("GET", "/v1/sessions/other/groups", None).await;
    assert_eq!(list, json!([]));
    let base = format!("/v1/sessions/g/groups/{id}");
    let (s, _) = sim
        .call(
            "PUT",
            &format!("{base}/subject"),
            Some(json!({"subject": "Renamed"})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = sim
        .call(
            "PUT",
            &format!("{base}/description"),
            Some(json!({"description": "Weekly"})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = sim
        .call(
            "POST",
            &format!("{base}/participants/add"),
            Some(json!({"participants": [{"id": "9876543210@c.us"}]})),
        )
        .await;
    // OAS 2026: 200 (ENGINE.md §5 rows 31-34).
    assert_eq!(s, 200);
    let (s, _) = sim
        .call(
            "POST",
            &format!("{base}/admin/promote"),
            Some(json!({"participants": [{"id": "9876543210@c.us"}]})),
        )
        .await;
    // OAS 2026: 200 (ENGINE.md §5 rows 31-34).
    assert_eq!(s, 200);
    let (s, _) = sim
        .call(
            "POST",
            &format!("{base}/participants/remove"),
            Some(json!({"participants": [{"id": "1234567890@c.us"}]})),
        )
        .await;
    // OAS 2026: 200 (ENGINE.md §5 rows 31-34).
    assert_eq!(s, 200);
    let (s, _) = sim
        .call(
            "POST",
            &format!("{base}/admin/demote"),
            Some(json!({"participants": [{"id": "9876543210@c.us"}]})),
        )
        .await;
    // OAS 2026: 200 (ENGINE.md §5 rows 31-34).
    assert_eq!(s, 200);
    let (s, got) = sim.call("GET", &base, None).await;
    assert_eq!(s, 200);
    assert_eq!(got["subject"], "Renamed");
    assert_eq!(got["description"], "Weekly");
    let members: Vec<_> = got["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_owned(),
                p["isAdmin"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(
        members.contains(&("9876543210@c.us".into(), false)),
        "{members:?}"
    );
    assert!(
        !members.iter().any(|(id, _)| id == "1234567890@c.us"),
        "{members:?}"
    );
    let (s, _) = sim.call("POST", &format!("{base}/leave"), None).await;
    assert_eq!(s, 200);
    let (s, err) = sim.call("GET", &base, None).await;
    assert_eq!(s, 404);
    assert_error(&err, 404, &id);

    let (s, channel) = sim
        .call(
            "POST",
            "/v1/sessions/g/channels",
            Some(json!({"name": "News", "description": "d"})),
        )
        .await;
    assert_eq!(s, 201);
    let cid = channel["id"].as_str().unwrap().to_owned();
    assert!(cid.ends_with("@newsletter"));
    let (s, _) = sim
        .call(
            "POST",
            "/v1/sendText",
            Some(json!({"session": "g", "chatId": cid, "text": "first post"})),
        )
        .await;
    assert_eq!(s, 201);
    let (s, preview) = sim
        .call(
            "GET",
            &format!("/v1/sessions/g/channels/{cid}/messages/preview"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    // `ChannelMessage` (ENGINE.md §6 row 39), found by the invite code too.
    assert_eq!(preview[0]["message"]["body"], "first post", "{preview}");
    assert_eq!(preview[0]["viewCount"], 0);
    let invite = channel["invite"].as_str().unwrap().to_owned();
    assert!(
        invite.starts_with("https://www.whatsapp.com/channel/"),
        "{invite}"
    );
    let code = invite.rsplit('/').next().unwrap().to_owned();
    let (s, by_code) = sim
        .call(
            "GET",
            &format!("/v1/sessions/g/channels/{code}/messages/preview"),
            None,
        )
        .await;
    assert_eq!((s.as_u16(), by_code), (200, preview));
    let (s, found) = sim
        .call("GET", &format!("/v1/sessions/g/channels/{code}"), None)
        .await;
    assert_eq!((s.as_u16(), &found["id"]), (200, &json!(cid)));
    let (_, list) = sim.call("GET", "/v1/sessions/g/channels", None).await;
    assert_eq!(list[0]["name"], "News");
    let (s, _) = sim
        .call("GET", &format!("/v1/sessions/g/channels/{cid}"), None)
        .await;
    assert_eq!(s, 200);
    let (s, _) = sim
        .call("DELETE", &format!("/v1/sessions/g/channels/{cid}"), None)
        .await;
    assert_eq!(s, 200);
    let (s, _) = sim
        .call("GET", &format!("/v1/sessions/g/channels/{cid}"), None)
        .await;
    assert_eq!(s, 404);

    let (s, body) = sim
        .call(
            "GET",
            "/v1/contacts/check-exists?phone=1234567890&session=g",
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        body,
        json!({"numberExists": true, "chatId": "1234567890@c.us"})
    );
    let (_, body) = sim
        .call(
            "GET",
            "/v1/contacts/check-exists?phone=1234567000&session=g",
            None,
        )
        .await;
    assert_eq!(body["numberExists"], false);
    let (s, err) = sim
        .call("GET", "/v1/contacts/check-exists?session=g", None)
        .await;
    assert_eq!(s, 400);
    assert_error(&err, 400, "phone is required");
    let (s, _) = sim
        .call("GET", "/v1/contacts/check-exists?phone=1234567890", None)
        .await;
    assert_eq!(s, 404, "the default session does not exist");

    let (s, _) = sim
        .call(
            "POST",
            "/v1/sessions/g/presence",
            Some(json!({"presence": "typing", "chatId": "1234567890"})),
        )
        .await;
    assert_eq!(s, 201);
    let (s, err) = sim
        .call(
            "POST",
            "/v1/sessions/g/presence",
            Some(json!({"presence": "dancing"})),
        )
        .await;
    assert_eq!(s, 400);
    assert_error(&err, 400, "presence");
    // The engine's own 400 bodies are `{detail}` (ENGINE.md §8 row 41).
    for (body, detail) in [
        (
            json!({"presence": "online", "chatId": "1234567890"}),
            "'online' presence works on the global scope and doesn't require 'chatId' field.",
        ),
        (
            json!({"presence": "typing"}),
            "'typing' presence requires 'chatId' field.",
        ),
    ] {
        let (s, err) = sim
            .call("POST", "/v1/sessions/g/presence", Some(body))
            .await;
        assert_eq!((s.as_u16(), err), (400, json!({ "detail": detail })));
    }
    let (_, presence) = sim.call("GET", "/v1/sessions/g/presence", None).await;
    assert_eq!(presence[0]["presences"][0]["lastKnownPresence"], "typing");
    let (_, presence) = sim.call("GET", "/v1/sessions/other/presence", None).await;
    assert_eq!(presence, json!([]));
    sim.running.stop().await;
}

// ---- Webhooks -------------------------------------------------------------------------------

#[tokio::test]
async fn sim_webhooks_deliver_signed_waha_envelopes_in_order() {
    let sim = Sim::start().await;
    let hook = Receiver::start(200).await;
    sim.call(
        "POST",
        "/v1/sessions",
        Some(json!({"name": "w", "config": {"metadata": {"user.id": "42"}}})),
    )
    .await;
    let (s, err) = sim
        .call(
            "POST",
            "/v1/sessions/w/webhooks",
            Some(json!({"events": ["message"]})),
        )
        .await;
    assert_eq!(s, 400);
    assert_error(&err, 400, "webhookUrl is required");
    let (s, err) = sim
        .call(
            "POST",
            "/v1/sessions/nope/webhooks",
            Some(json!({"webhookUrl": hook.url})),
        )
        .await;
    assert_eq!(s, 404);
    assert_error(&err, 404, "nope");
    let (s, reg) = sim
        .call(
            "POST",
            "/v1/sessions/w/webhooks",
            Some(json!({
                "webhookUrl": hook.url,
                "events": ["message", "message.any", "message.ack", "session.status"],
                "hmacKey": "my-secret-key",
                "customHeaders": [{"name": "X-Token", "value": "abc"}],
            })),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(reg["webhookUrl"], json!(hook.url));
    assert_ne!(reg["hmacKey"], "my-secret-key", "the key is never echoed");

    sim.control("POST", "/_sim/sessions/w/scan", json!({}))
        .await;
    sim.call(
        "POST",
        "/v1/sendText",
        Some(json!({"session": "w", "chatId": "1234567890", "text": "out"})),
    )
    .await;
    sim.control(
        "POST",
        "/_sim/sessions/w/incoming",
        json!({"from": "1234567890", "text": "in"}),
    )
    .await;
    let hits = hook.wait_for(5, Duration::from_secs(5)).await;
    assert_eq!(
        hook.events(),
        [
            "session.status",
            "message.any",
            "message.ack",
            "message",
            "message.any"
        ]
    );
    // The scan goes straight to WORKING: the engine has no AUTHENTICATED (ENGINE.md §10.4).
    assert_eq!(hits[0].json()["payload"]["status"], "WORKING");
    let mut ids = std::collections::HashSet::new();
    let mut request_ids = std::collections::HashSet::new();
    for hit in &hits {
        let envelope = hit.json();
        assert!(
            envelope["id"].as_str().unwrap().starts_with("evt_"),
            "{envelope}"
        );
        assert!(ids.insert(envelope["id"].clone()), "event ids are unique");
        assert!(request_ids.insert(hit.header("x-webhook-request-id").to_owned()));
        assert_eq!(envelope["session"], "w");
        assert_eq!(envelope["engine"], "WEBJS");
        assert_eq!(envelope["metadata"], json!({"user.id": "42"}));
        assert_eq!(envelope["environment"]["tier"], "PLUS");
        let ts = envelope["timestamp"].as_i64().unwrap();
        assert!(ts > 1_700_000_000_000, "milliseconds");
        let header_ts: i64 = hit.header("x-webhook-timestamp").parse().unwrap();
        assert!((header_ts - ts).abs() < 60_000);
        assert_eq!(
            hit.header("x-webhook-hmac"),
            webhook_signature("my-secret-key", &hit.body)
        );
        assert_eq!(hit.header("x-webhook-hmac-algorithm"), "sha512");
        assert_eq!(hit.header("x-token"), "abc");
        assert_eq!(hit.header("content-type"), "application/json");
    }
    let sent = hits[1].json();
    assert_eq!(sent["payload"]["body"], "out");
    assert_eq!(sent["me"]["id"], sent["payload"]["from"]);
    assert_eq!(hits[2].json()["payload"]["id"], sent["payload"]["id"]);
    let incoming = hits[3].json();
    assert_eq!(incoming["payload"]["from"], "1234567890@c.us");
    assert_eq!(incoming["payload"]["fromMe"], false);
    assert_eq!(incoming["payload"]["body"], "in");

    // Removing the webhook stops deliveries.
    let (s, _) = sim
        .v1(
            reqwest::Method::DELETE,
            &format!("/v1/sessions/w/webhooks?webhookUrl={}", hook.url),
        )
        .send()
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    assert_eq!(s, 200);
    let (s, view) = sim.control("GET", "/_sim/sessions/w", json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(view["webhooks"], json!([]));
    sim.control(
        "POST",
        "/_sim/sessions/w/incoming",
        json!({"from": "1234567890", "text": "again"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hook.hits.lock().unwrap().len(), 5);
    hook.stop().await;
    sim.running.stop().await;
}

#[tokio::test]
async fn sim_webhook_default_events_are_message_only_and_unsigned_without_a_key() {
    let sim = Sim::start().await;
    let hook = Receiver::start(200).await;
    sim.working("d").await;
    sim.call(
        "POST",
        "/v1/sessions/d/webhooks",
        Some(json!({"webhookUrl": hook.url})),
    )
    .await;
    sim.call(
        "POST",
        "/v1/sendText",
        Some(json!({"session": "d", "chatId": "1234567890", "text": "x"})),
    )
    .await;
    sim.control(
        "POST",
        "/_sim/sessions/d/incoming",
        json!({"from": "1234567890", "text": "y"}),
    )
    .await;
    let hits = hook.wait_for(1, Duration::from_secs(3)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(hook.events(), ["message"]);
    assert_eq!(hits[0].header("x-webhook-hmac"), "");
    assert!(!hits[0].header("x-webhook-request-id").is_empty());
    hook.stop().await;
    sim.running.stop().await;
}

/// Registers a failing receiver with `retries` and gives the gaps between attempts in seconds.
async fn retry_gaps(retries: Value, attempts: usize) -> (Vec<f64>, Vec<Hit>) {
    let sim = Sim::start().await;
    let hook = Receiver::start(500).await;
    sim.working("rt").await;
    sim.call(
        "POST",
        "/v1/sessions/rt/webhooks",
        Some(json!({"webhookUrl": hook.url, "events": ["message"], "retries": retries})),
    )
    .await;
    sim.control(
        "POST",
        "/_sim/sessions/rt/incoming",
        json!({"from": "1234567890", "text": "r"}),
    )
    .await;
    let hits = hook.wait_for(attempts, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let all = hook.hits.lock().unwrap().clone();
    assert_eq!(all.len(), attempts, "no attempt beyond the policy's");
    hook.stop().await;
    sim.running.stop().await;
    let gaps = hits
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_secs_f64())
        .collect();
    (gaps, hits)
}

fn assert_gaps(gaps: &[f64], expected: &[f64], jitter: f64) {
    assert_eq!(gaps.len(), expected.len(), "{gaps:?}");
    for (got, want) in gaps.iter().zip(expected) {
        let (low, high) = (want * (1.0 - jitter) - 0.02, want * (1.0 + jitter) + 0.25);
        assert!(
            (low..=high).contains(got),
            "gap {got:.3}s, expected {want}s: {gaps:?}"
        );
    }
}

#[tokio::test]
async fn sim_webhook_constant_retries_are_evenly_spaced() {
    let (gaps, hits) = retry_gaps(
        json!({"policy": "constant", "delaySeconds": 0.4, "attempts": 4}),
        4,
    )
    .await;
    assert_gaps(&gaps, &[0.4, 0.4, 0.4], 0.0);
    // Same event, a new request id per attempt.
    let ids: std::collections::HashSet<_> = hits.iter().map(|h| h.json()["id"].clone()).collect();
    assert_eq!(ids.len(), 1);
    let requests: std::collections::HashSet<_> = hits
        .iter()
        .map(|h| h.header("x-webhook-request-id").to_owned())
        .collect();
    assert_eq!(requests.len(), 4);
}

#[tokio::test]
async fn sim_webhook_linear_retries_grow_by_the_delay() {
    let (gaps, _) = retry_gaps(
        json!({"policy": "linear", "delaySeconds": 0.3, "attempts": 4}),
        4,
    )
    .await;
    assert_gaps(&gaps, &[0.3, 0.6, 0.9], 0.0);
}

#[tokio::test]
async fn sim_webhook_exponential_retries_double_with_jitter() {
    let (gaps, _) = retry_gaps(
        json!({"policy": "exponential", "delaySeconds": 0.3, "attempts": 4}),
        4,
    )
    .await;
    assert_gaps(&gaps, &[0.3, 0.6, 1.2], 0.2);
}

// ---- Control API ----------------------------------------------------------------------------

#[tokio::test]
async fn sim_control_api_fires_reactions_acks_status_changes_and_events() {
    let sim = Sim::start().await;
    let hook = Receiver::start(200).await;
    sim.working("c").await;
    sim.call(
        "POST",
        "/v1/sessions/c/webhooks",
        Some(json!({"webhookUrl": hook.url, "events": ["message.reaction", "message.ack", "session.status", "call.received"]})),
    )
    .await;
    let (s, _) = sim
        .control("POST", "/_sim/sessions/c/reaction", json!({"messageId": "true_1234567890@c.us_3EB0AA", "reaction": "👍", "from": "1234567890"}))
        .await;
    assert_eq!(s, 201);
    let (s, _) = sim
        .control(
            "POST",
            "/_sim/sessions/c/ack",
            json!({"messageId": "true_1234567890@c.us_3EB0AA", "ack": 3}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, body) = sim
        .control(
            "POST",
            "/_sim/sessions/c/status",
            json!({"status": "FAILED"}),
        )
        .await;
    assert_eq!((s.as_u16(), body["status"].clone()), (200, json!("FAILED")));
    let (s, _) = sim
        .control(
            "POST",
            "/_sim/sessions/c/events",
            json!({"event": "call.received", "payload": {"id": "call1"}}),
        )
        .await;
    assert_eq!(s, 201);
    let hits = hook.wait_for(4, Duration::from_secs(3)).await;
    assert_eq!(
        hook.events(),
        [
            "message.reaction",
            "message.ack",
            "session.status",
            "call.received"
        ]
    );
    assert_eq!(hits[0].json()["payload"]["reaction"]["text"], "👍");
    assert_eq!(
        hits[0].json()["payload"]["reaction"]["messageId"],
        "true_1234567890@c.us_3EB0AA"
    );
    assert_eq!(hits[1].json()["payload"]["ack"], 3);
    assert_eq!(hits[1].json()["payload"]["ackName"], "READ");
    assert_eq!(hits[2].json()["payload"]["status"], "FAILED");
    assert_eq!(hits[3].json()["payload"]["id"], "call1");

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
    let (s, err) = sim
        .control(
            "POST",
            "/_sim/sessions/c/incoming",
            json!({"from": "1234567890", "text": "x"}),
        )
        .await;
    assert_eq!(s, 422, "a FAILED session receives nothing");
    assert_eq!(err["status"], "FAILED", "{err}");
    hook.stop().await;
    sim.running.stop().await;
}

#[tokio::test]
async fn sim_faults_inject_statuses_429s_delays_and_dropped_connections() {
    let sim = Sim::start().await;
    // A status, for a counted number of calls, then normal again.
    let (s, fault) = sim
        .control(
            "POST",
            "/_sim/faults",
            json!({"path": "/v1/sessions", "method": "GET", "status": 500, "count": 2}),
        )
        .await;
    assert_eq!(s, 201, "{fault}");
    let (s, _) = sim
        .call("POST", "/v1/sessions", Some(json!({"name": "f"})))
        .await;
    assert_eq!(s, 201, "the method filter spares POST");
    for _ in 0..2 {
        let (s, err) = sim.call("GET", "/v1/sessions", None).await;
        assert_eq!(s, 500);
        assert_error(&err, 500, "");
    }
    let (s, _) = sim.call("GET", "/v1/sessions", None).await;
    assert_eq!(s, 200);

    // 429 with Retry-After.
    sim.control(
        "POST",
        "/_sim/faults",
        json!({"path": "/v1/sendText", "status": 429, "retryAfter": 3}),
    )
    .await;
    let res = sim
        .v1(reqwest::Method::POST, "/v1/sendText")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "3");
    assert_error(&res.json().await.unwrap(), 429, "");

    // A delay, then the normal answer.
    sim.control(
        "POST",
        "/_sim/faults",
        json!({"path": "/v1/sessions/f", "delayMs": 400, "count": 1}),
    )
    .await;
    let started = Instant::now();
    let (s, _) = sim.call("GET", "/v1/sessions/f", None).await;
    assert_eq!(s, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );

    // A dropped connection: no answer at all.
    sim.control(
        "POST",
        "/_sim/faults",
        json!({"path": "/v1/sessions/*", "drop": true}),
    )
    .await;
    let err = sim
        .v1(reqwest::Method::GET, "/v1/sessions/f")
        .send()
        .await
        .unwrap_err();
    assert!(err.status().is_none(), "no status: {err:?}");
    let (s, faults) = sim.control("GET", "/_sim/faults", json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(faults.as_array().unwrap().len(), 2);

    // Clearing: one by id, then all.
    let id = faults[0]["id"].as_u64().unwrap();
    let res = sim
        .http
        .delete(sim.url(&format!("/_sim/faults/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = sim
        .http
        .delete(sim.url("/_sim/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let (s, _) = sim.call("GET", "/v1/sessions/f", None).await;
    assert_eq!(s, 200);
    let res = sim
        .v1(reqwest::Method::POST, "/v1/sendText")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    let (s, err) = sim
        .control("POST", "/_sim/faults", json!({"path": "/v1/x"}))
        .await;
    assert_eq!(s, 400);
    assert_error(&err, 400, "at least one");
    sim.running.stop().await;
}

#[tokio::test]
async fn sim_stops_and_frees_its_port() {
    let sim = Sim::start().await;
    let port = sim.running.port();
    assert_eq!(sim.running.url(), format!("http://127.0.0.1:{port}"));
    sim.running.stop().await;
    assert!(reqwest::get(format!("http://127.0.0.1:{port}/v1/sessions"))
        .await
        .is_err());
}

// ---- Sandbox mode ---------------------------------------------------------------------------

/// `serve` with no upstream key and no database: the embedded PostgreSQL starts, the simulator
/// is the upstream, the log says so loudly, and a tenant's sendText goes through end to end
/// (the session scans itself a few seconds after its QR code is fetched).
#[tokio::test]
async fn sim_sandbox_serve_without_key_or_database_sends_end_to_end() {
    use crate::helpers::{provision_with, Provisioned};
    use crate::helpers::{shared_tempdir, GatewayProcess, ADMIN_PASSWORD, ADMIN_USER};
    let dir = shared_tempdir();
    let _cluster = EmbeddedCluster(
        wa_gateway::db::EmbeddedPostgres::locate(&dir.path().join("data"), None).unwrap(),
    );
    let vars = [
        ("WAGW_DATA_DIR", dir.path().join("data").to_str().unwrap()),
        ("WAGW_LISTEN", "127.0.0.1:0"),
        ("WAGW_SHUTDOWN_TIMEOUT_SECS", "2"),
        ("WAGW_ADMIN_USER", ADMIN_USER),
        ("WAGW_ADMIN_PASSWORD", ADMIN_PASSWORD),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let gateway = GatewayProcess::start(&vars).await;
    let logs = gateway.logs();
    assert!(logs.contains("SANDBOX MODE"), "{logs}");
    assert!(logs.contains("WARN"), "logged as a warning: {logs}");

    let http = reqwest::Client::new();
    let tenant = json!({"name": "sandbox-team", "plan": "pro"});
    let Provisioned { token, key, .. } =
        provision_with(&http, &gateway.address, tenant, &["*"]).await;
    let key = key["key"].as_str().expect("a tenant key").to_owned();
    let tenant_call = |method: reqwest::Method, path: &str| {
        http.request(method, gateway.url(path))
            .header("x-rapidapi-key", &key)
    };

    let res = tenant_call(reqwest::Method::POST, "/v1/sessions")
        .json(&json!({"name": "default"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let qr = tenant_call(reqwest::Method::GET, "/v1/default/auth/qr?format=raw")
        .send()
        .await
        .unwrap();
    assert_eq!(qr.status(), 200);
    assert!(qr.json::<Value>().await.unwrap()["value"].is_string());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let session: Value = tenant_call(reqwest::Method::GET, "/v1/sessions/default")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if session["status"] == "WORKING" {
            assert_eq!(
                session["name"], "default",
                "the tenant's own name: {session}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "never WORKING: {session}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let res = tenant_call(reqwest::Method::POST, "/v1/sendText")
        .json(&json!({"session": "default", "chatId": "1234567890", "text": "hello from the sandbox"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let message: Value = res.json().await.unwrap();
    assert!(
        message["id"]
            .as_str()
            .unwrap()
            .starts_with("true_1234567890@c.us_"),
        "{message}"
    );
    assert_eq!(message["body"], "hello from the sandbox");

    let logs = gateway.logs();
    assert!(!logs.contains(&key), "the tenant key is never logged");
    assert!(
        !logs.contains(ADMIN_PASSWORD),
        "the admin password is never logged"
    );
    assert!(!logs.contains(&token), "the admin token is never logged");
    let status = gateway.terminate().await;
    assert!(status.success(), "{status:?}");
}

/// Stops the sandbox's embedded cluster whatever happens to the test.
struct EmbeddedCluster(wa_gateway::db::EmbeddedPostgres);

impl Drop for EmbeddedCluster {
    fn drop(&mut self) {
        let _ = self.0.stop();
    }
}
