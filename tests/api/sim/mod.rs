//! The upstream simulator against the seed, endpoint by endpoint, plus its webhooks, control
//! API, faults and the sandbox mode of the real binary. This file is the harness: a client for
//! one simulator and a webhook receiver; the tests are one file per resource.

mod control;
mod groups;
mod messages;
mod plan;
mod qr;
mod sandbox;
mod sessions;
mod webhooks;

use serde_json::{json, Value};
use std::time::Duration;
use wa_gateway::sim::{RunningSim, SimOptions, Simulator};

const KEY: &str = "sim-test-key";
const HOST: &str = "whatsapp-messaging-bot.p.rapidapi.com";

/// One simulator, called with its key and host.
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

    /// A `/v1` request with the plan headers, to send as it is or with more on it.
    fn v1(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .header("x-rapidapi-key", KEY)
            .header("x-rapidapi-host", HOST)
    }

    /// A `/v1` call: its status and JSON body (`Null` when empty).
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.v1(method.parse().unwrap(), path);
        if let Some(body) = body {
            req = req.json(&body);
        }
        answer(req.send().await.expect("an answer")).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(body)).await
    }

    /// A set-up call that must succeed: anything but 2xx fails the test here, naming the call.
    async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, body) = self.call(method, path, body).await;
        assert!(
            (200..300).contains(&status),
            "set-up {method} {path}: {status} {body}"
        );
        body
    }

    /// A `/_sim` control call (no key needed).
    async fn control(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let req = self.http.request(method.parse().unwrap(), self.url(path));
        answer(req.json(&body).send().await.expect("an answer")).await
    }

    /// A control call that must succeed, like `ok`.
    async fn control_ok(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.control("POST", path, body).await;
        assert!(
            (200..300).contains(&status),
            "set-up POST {path}: {status} {answer}"
        );
        answer
    }

    /// A session created, scanned and WORKING.
    async fn working(&self, name: &str) {
        let (s, body) = self.post("/v1/sessions", json!({"name": name})).await;
        assert_eq!(s, 201, "{body}");
        self.scan(name).await;
    }

    async fn scan(&self, name: &str) -> Value {
        let body = self
            .control_ok(&format!("/_sim/sessions/{name}/scan"), json!({}))
            .await;
        assert_eq!(body["status"], "WORKING", "{body}");
        body
    }

    /// The session's status as `GET /v1/sessions/{name}` answers it (200).
    async fn status(&self, name: &str) -> Value {
        let (s, session) = self.get(&format!("/v1/sessions/{name}")).await;
        assert_eq!(s, 200, "GET /v1/sessions/{name}: {session}");
        session["status"].clone()
    }

    /// Registers a webhook on `session` (`registration` without its `webhookUrl`).
    async fn hook(&self, session: &str, url: &str, mut registration: Value) {
        registration["webhookUrl"] = json!(url);
        let path = format!("/v1/sessions/{session}/webhooks");
        let (s, body) = self.post(&path, registration).await;
        assert_eq!(s, 201, "registering a webhook: {body}");
    }

    /// A contact writes to `session`.
    async fn incoming(&self, session: &str, text: &str) {
        let path = format!("/_sim/sessions/{session}/incoming");
        self.control_ok(&path, json!({"from": "1234567890", "text": text}))
            .await;
    }

    /// Waits until the simulator has no webhook delivery left to make (first attempts and
    /// retries alike), so a count taken afterwards is final.
    async fn drained(&self) {
        let url = self.url("/_sim/deliveries");
        let drained = crate::helpers::eventually(Duration::from_secs(20), || async {
            let (status, pending) = answer(self.http.get(&url).send().await.unwrap()).await;
            assert_eq!(status, 200, "GET /_sim/deliveries: {pending}");
            pending["pending"] == 0
        })
        .await;
        assert!(drained, "webhook deliveries still pending after 20 s");
    }

    /// The calls logged under `/v1`, oldest first.
    async fn log(&self) -> Vec<Value> {
        crate::helpers::sim_log_at(&self.running.url()).await
    }

    async fn stop(self) {
        self.running.stop().await;
    }
}

async fn answer(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON answer: {text}"))
    };
    (status, value)
}

/// The seed's error shape with `status`, its message containing `message`.
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

/// Asserts each `(method, path, body, status, message)` answers `status` in the error shape
/// with `message` in it.
async fn assert_refusals(sim: &Sim, cases: &[(&str, &str, Option<Value>, u16, &str)]) {
    for (method, path, body, status, message) in cases {
        let (s, err) = sim.call(method, path, body.clone()).await;
        assert_eq!(s, *status, "{method} {path}: {err}");
        assert_error(&err, *status, message);
    }
}
