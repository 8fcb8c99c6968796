//! The simulator's `/_sim/deliveries` count and its `--no-webhooks` switch, against a real
//! simulator on a loopback port (in-process, and as `wa-gateway sim`).
//!
//! Every delivery is counted from the call that fires its event until the receiver has answered
//! its last attempt, so "pending is 0" is a drain: after it, nothing more arrives, and a test
//! can assert on what the receiver got without sleeping.

use crate::helpers::Receiver;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wa_gateway::sim::{RunningSim, SimOptions, Simulator};

/// How long a drain may take at most (the retries below add up to about a second).
const PATIENCE: Duration = Duration::from_secs(20);

// ---- A simulator without a key, and a webhook receiver ------------------------------------

struct Sim {
    base: String,
    http: reqwest::Client,
}

impl Sim {
    fn at(base: String) -> Self {
        Self {
            base,
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let res = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("the simulator answers");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Fails the test on an unexpected status, so a broken set-up step is named where it broke.
    async fn expect(&self, status: u16, method: &str, path: &str, body: Value) -> Value {
        let (got, answer) = self.call(method, path, body).await;
        assert_eq!(got, status, "{method} {path}: {answer}");
        answer
    }

    async fn pending(&self) -> u64 {
        let answer = self.expect(200, "GET", "/_sim/deliveries", json!({})).await;
        answer["pending"]
            .as_u64()
            .unwrap_or_else(|| panic!("{answer}"))
    }

    async fn drained(&self) -> bool {
        crate::helpers::eventually(PATIENCE, || async { self.pending().await == 0 }).await
    }

    /// Session `s`, WORKING, with a webhook for every event.
    async fn session_with_webhook(&self, webhook: Value) {
        self.expect(201, "POST", "/v1/sessions", json!({"name": "s"}))
            .await;
        self.expect(201, "POST", "/v1/sessions/s/webhooks", webhook)
            .await;
        self.expect(200, "POST", "/_sim/sessions/s/scan", json!({}))
            .await;
    }

    /// Custom events through the control API: one delivery each to a registration for `message`.
    async fn fire(&self, n: usize) {
        for i in 0..n {
            let event = json!({"event": "message", "payload": {"n": i}});
            self.expect(201, "POST", "/_sim/sessions/s/events", event)
                .await;
        }
    }
}

async fn start_sim(options: SimOptions) -> (RunningSim, Sim) {
    let running = Simulator::start(options).await.expect("simulator starts");
    let sim = Sim::at(running.url());
    (running, sim)
}

// ---- GET /_sim/deliveries -------------------------------------------------------------------

#[tokio::test]
async fn sim_deliveries_are_pending_until_the_receiver_has_answered_each() {
    let receiver = Receiver::answering(200).await;
    receiver.answer_after(Duration::from_millis(500));
    let (running, sim) = start_sim(SimOptions::default()).await;
    assert_eq!(sim.pending().await, 0, "nothing was fired yet");
    sim.session_with_webhook(json!({"webhookUrl": receiver.url}))
        .await;

    sim.fire(3).await;
    // The receiver takes half a second per delivery, one after the other.
    let pending = sim.pending().await;
    assert!((1..=3).contains(&pending), "pending {pending}");
    assert!(
        sim.drained().await,
        "still pending: {}",
        sim.pending().await
    );
    assert_eq!(receiver.events(), ["message"; 3]);

    running.stop().await;
    receiver.stop().await;
}

#[tokio::test]
async fn sim_deliveries_count_a_failing_one_until_its_last_retry_gives_up() {
    let receiver = Receiver::answering(500).await;
    let (running, sim) = start_sim(SimOptions::default()).await;
    let retries = json!({"policy": "constant", "delaySeconds": 0.5, "attempts": 3});
    sim.session_with_webhook(json!({"webhookUrl": receiver.url, "retries": retries}))
        .await;

    sim.fire(1).await;
    // Two retries half a second apart: it cannot be over yet.
    assert_eq!(sim.pending().await, 1);
    assert!(
        sim.drained().await,
        "still pending: {}",
        sim.pending().await
    );
    assert_eq!(receiver.events().len(), 3, "every attempt was made");

    running.stop().await;
    receiver.stop().await;
}

#[tokio::test]
async fn sim_reset_drops_pending_retries_from_the_count() {
    let receiver = Receiver::answering(500).await;
    let (running, sim) = start_sim(SimOptions::default()).await;
    let retries = json!({"policy": "constant", "delaySeconds": 600, "attempts": 2});
    sim.session_with_webhook(json!({"webhookUrl": receiver.url, "retries": retries}))
        .await;

    sim.fire(1).await;
    assert_eq!(sim.pending().await, 1);
    sim.expect(200, "POST", "/_sim/reset", json!({})).await;
    assert_eq!(sim.pending().await, 0, "the retry is dropped with the rest");

    running.stop().await;
    receiver.stop().await;
}

// ---- --no-webhooks ---------------------------------------------------------------------------

/// Fires every kind of event a session has, for a receiver of all of them: status changes, a
/// sent message (`message.any`, `message.ack`), a received one and a custom one. Returns once
/// the count is drained, so whatever was sent has arrived.
async fn fire_every_kind_of_event(sim: &Sim, receiver: &Receiver) {
    let webhook = json!({"webhookUrl": receiver.url, "events": ["*"]});
    sim.session_with_webhook(webhook).await;
    let text = json!({"session": "s", "chatId": "1234567890", "text": "hi"});
    sim.expect(201, "POST", "/v1/sendText", text).await;
    let incoming = json!({"from": "1234567890", "text": "hello"});
    sim.expect(201, "POST", "/_sim/sessions/s/incoming", incoming)
        .await;
    sim.fire(1).await;
    assert!(
        sim.drained().await,
        "still pending: {}",
        sim.pending().await
    );
}

#[tokio::test]
async fn sim_with_webhooks_sends_every_kind_of_event() {
    let receiver = Receiver::answering(200).await;
    let (running, sim) = start_sim(SimOptions::default()).await;

    fire_every_kind_of_event(&sim, &receiver).await;
    let events = receiver.events();
    for event in ["session.status", "message.any", "message.ack", "message"] {
        assert!(
            events.iter().any(|e| e == event),
            "no {event} in {events:?}"
        );
    }

    running.stop().await;
    receiver.stop().await;
}

#[tokio::test]
async fn sim_without_webhooks_keeps_registrations_but_sends_no_event() {
    let receiver = Receiver::answering(200).await;
    let (running, sim) = start_sim(SimOptions {
        send_webhooks: false,
        ..SimOptions::default()
    })
    .await;

    fire_every_kind_of_event(&sim, &receiver).await;
    assert_eq!(receiver.events(), Vec::<String>::new());
    let session = sim.expect(200, "GET", "/_sim/sessions/s", json!({})).await;
    assert_eq!(
        session["webhooks"][0]["webhookUrl"], receiver.url,
        "{session}"
    );

    running.stop().await;
    receiver.stop().await;
}

/// `wa-gateway sim` as a child process, its output in a file; killed when dropped.
struct SimProcess {
    child: Child,
    log: tempfile::NamedTempFile,
}

impl SimProcess {
    fn spawn(args: &[&str]) -> Self {
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_wa-gateway"))
            .env_clear()
            .env("RUST_LOG", "info")
            .args(["sim", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.reopen().unwrap())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("starting wa-gateway sim");
        Self { child, log }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// The port of its start-up line `listening on http://IP:PORT`.
    async fn port(&mut self) -> u16 {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let output = self.output();
            let port = output
                .split("listening on http://")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|address| address.rsplit(':').next())
                .and_then(|port| port.parse().ok());
            if let Some(port) = port {
                return port;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("wa-gateway sim exited with {status}:\n{output}");
            }
            assert!(Instant::now() < deadline, "not listening:\n{output}");
            tokio::time::sleep(Duration::from_millis(50)).await; // poll
        }
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn sim_command_with_no_webhooks_sends_no_event() {
    let receiver = Receiver::answering(200).await;
    let mut process = SimProcess::spawn(&["--no-webhooks"]);
    let sim = Sim::at(format!("http://127.0.0.1:{}", process.port().await));

    fire_every_kind_of_event(&sim, &receiver).await;
    assert_eq!(receiver.events(), Vec::<String>::new());

    drop(process);
    receiver.stop().await;
}
