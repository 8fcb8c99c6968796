//! Logging a session in: QR codes, pairing codes, the scan, the auto-scan and the status wait.

use super::{assert_refusals, Sim};
use crate::helpers::Receiver;
use base64::Engine;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use wa_gateway::sim::SimOptions;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";

#[tokio::test]
async fn sim_qr_code_comes_raw_or_as_a_png_in_every_format() {
    let sim = Sim::start().await;
    sim.ok("POST", "/v1/sessions", Some(json!({"name": "q"})))
        .await;
    let (s, raw) = sim.get("/v1/q/auth/qr?format=raw").await;
    assert_eq!(s, 200);
    assert!(raw["value"].as_str().unwrap().starts_with("2@"), "{raw}");

    // Any format but `raw` is the image (ENGINE.md §2 row 7), the seed's `binary` included;
    // JSON only for exactly `application/json`: axios' default Accept gets the PNG.
    for query in ["", "?format=image", "?format=binary", "?format=svg"] {
        let qr = format!("/v1/q/auth/qr{query}");
        for accept in ["*/*", "application/json, text/plain, */*"] {
            let req = sim.v1(reqwest::Method::GET, &qr).header("accept", accept);
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), 200);
            assert_eq!(
                res.headers()["content-type"],
                "image/png",
                "{query} {accept}"
            );
            assert_eq!(&res.bytes().await.unwrap()[..8], PNG, "{query} {accept}");
        }
    }
    let res = sim
        .v1(reqwest::Method::GET, "/v1/q/auth/qr")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["mimetype"], "image/png");
    let png = base64::engine::general_purpose::STANDARD
        .decode(body["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(&png[..4], &PNG[..4]);
    sim.stop().await;
}

#[tokio::test]
async fn sim_codes_of_a_missing_session_or_without_a_phone_are_refused() {
    let sim = Sim::start().await;
    sim.ok("POST", "/v1/sessions", Some(json!({"name": "q"})))
        .await;
    assert_refusals(
        &sim,
        &[
            ("GET", "/v1/nope/auth/qr", None, 404, "nope"),
            (
                "GET",
                "/v1/q/auth/pairing-code",
                None,
                400,
                "phoneNumber is required",
            ),
        ],
    )
    .await;
    sim.stop().await;
}

/// A pairing code, by the seed's call and the engine's; the scan logs in that phone, and a
/// WORKING session has no QR code.
#[tokio::test]
async fn sim_pairing_code_logs_in_the_phone_it_was_asked_for() {
    let sim = Sim::start().await;
    sim.ok("POST", "/v1/sessions", Some(json!({"name": "q"})))
        .await;
    let (s, body) = sim
        .get("/v1/q/auth/pairing-code?phoneNumber=12132132130")
        .await;
    assert_eq!(s, 200);
    let code = body["code"].as_str().unwrap();
    assert_eq!((code.len(), &code[4..5]), (9, "-"), "{code}");
    // The engine's own call answers the same, 201 (ENGINE.md §2 row 8).
    let phone = json!({"phoneNumber": "12132132130"});
    let (s, body) = sim.post("/v1/q/auth/request-code", phone).await;
    assert_eq!(s, 201);
    assert_eq!(body["code"].as_str().map(str::len), Some(9), "{body}");

    assert_eq!(sim.scan("q").await["me"]["id"], "12132132130@c.us");
    let (s, body) = sim.get("/v1/q/auth/qr").await;
    assert_eq!(s, 422);
    assert_eq!(
        (&body["status"], &body["expected"]),
        (&json!("WORKING"), &json!(["SCAN_QR_CODE"])),
        "{body}"
    );
    sim.stop().await;
}

/// The auto-scan is armed by the first fetch of a code, not by the session's start: a session
/// whose first code lived longer than the auto-scan delay, unfetched, still waits for its scan.
#[tokio::test]
async fn sim_auto_scan_logs_in_after_the_qr_is_fetched() {
    let auto_scan = Duration::from_millis(300);
    let sim = Sim::with(SimOptions {
        auto_scan: Some(auto_scan),
        qr_first_ttl: Duration::from_millis(500),
        ..SimOptions::default()
    })
    .await;
    let hook = Receiver::answering(200).await;
    let created = json!({"name": "a", "start": false});
    sim.ok("POST", "/v1/sessions", Some(created)).await;
    sim.hook("a", &hook.url, json!({"events": ["session.status"]}))
        .await;
    sim.ok("POST", "/v1/sessions/start", Some(json!({"name": "a"})))
        .await;
    // STARTING, SCAN_QR_CODE, and SCAN_QR_CODE again for the second code.
    hook.wait_for(3, Duration::from_secs(5)).await;
    assert_eq!(
        sim.status("a").await,
        "SCAN_QR_CODE",
        "no scan before a fetch"
    );

    let fetched = Instant::now();
    sim.ok("GET", "/v1/a/auth/qr?format=raw", None).await;
    let working = crate::helpers::eventually(Duration::from_secs(3), || async {
        sim.status("a").await == "WORKING"
    })
    .await;
    assert!(working, "WORKING after the fetch");
    assert!(fetched.elapsed() >= auto_scan, "{:?}", fetched.elapsed());
    hook.stop().await;
    sim.stop().await;
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
    sim.ok("POST", "/v1/sessions", Some(json!({"name": "a"})))
        .await;
    assert_eq!(sim.get("/v1/a/auth/qr?format=raw").await.0, 200);
    let send = json!({"session": "a", "chatId": "1234567890", "text": "hi"});
    let (s, body) = sim.post("/v1/sendText", send.clone()).await;
    assert_eq!(s, 201, "{body}");
    sim.ok("POST", "/v1/sessions/stop", Some(json!({"name": "a"})))
        .await;
    let started = Instant::now();
    let (s, body) = sim.post("/v1/sendText", send).await;
    assert_eq!((s, &body["status"]), (422, &json!("STOPPED")));
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "{:?}",
        started.elapsed()
    );
    sim.stop().await;
}

/// Each code lives its time, then the next shows (a `SCAN_QR_CODE` event each); after the
/// last one the session is FAILED.
#[tokio::test]
async fn sim_qr_codes_rotate_then_the_session_fails() {
    let first_ttl = Duration::from_millis(300);
    let sim = Sim::with(SimOptions {
        qr_first_ttl: first_ttl,
        qr_ttl: Duration::from_millis(150),
        max_qr_codes: 3,
        ..SimOptions::default()
    })
    .await;
    let hook = Receiver::answering(200).await;
    let created = json!({"name": "r", "start": false});
    sim.ok("POST", "/v1/sessions", Some(created)).await;
    sim.hook("r", &hook.url, json!({"events": ["session.status"]}))
        .await;
    let started = Instant::now();
    sim.ok("POST", "/v1/sessions/start", Some(json!({"name": "r"})))
        .await;
    let first = sim.ok("GET", "/v1/r/auth/qr?format=raw", None).await;
    let rotated = crate::helpers::eventually(Duration::from_secs(3), || async {
        sim.ok("GET", "/v1/r/auth/qr?format=raw", None).await != first
    })
    .await;
    assert!(rotated, "a new code after {first}");
    assert!(
        started.elapsed() >= first_ttl,
        "not before the first's lifetime"
    );

    let hits = hook.wait_for(5, Duration::from_secs(3)).await;
    let statuses: Vec<_> = hits
        .iter()
        .map(|h| h.json()["payload"]["status"].clone())
        .collect();
    let scan = json!("SCAN_QR_CODE");
    let expected = [
        json!("STARTING"),
        scan.clone(),
        scan.clone(),
        scan,
        json!("FAILED"),
    ];
    assert_eq!(statuses, expected);
    assert_eq!(sim.status("r").await, "FAILED");
    hook.stop().await;
    sim.stop().await;
}
