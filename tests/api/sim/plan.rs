//! The hosted API's plan checks: key and host, the per-second limit, the monthly quota.

use super::{answer, assert_error, Sim, HOST, KEY};
use serde_json::Value;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wa_gateway::sim::SimOptions;

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
        let (s, body) = answer(req.send().await.unwrap()).await;
        assert_eq!(s, 401, "{key:?} {host:?}");
        assert_error(&body, 401, "");
    }
    assert_eq!(sim.get("/v1/sessions").await.0, 200);
    sim.stop().await;
}

fn unix_second() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Waits for the wall clock's next second (the limiter counts calls per second) and answers it.
async fn next_second() -> u64 {
    let now = unix_second();
    loop {
        tokio::time::sleep(Duration::from_millis(5)).await; // poll
        let second = unix_second();
        if second != now {
            return second;
        }
    }
}

/// A call's status, `Retry-After` and body.
type Limited = (u16, Option<String>, Value);

async fn list(sim: &Sim) -> Limited {
    let res = sim
        .v1(reqwest::Method::GET, "/v1/sessions")
        .send()
        .await
        .unwrap();
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, body) = answer(res).await;
    (status, retry_after, body)
}

/// `n` calls that all fall into one second, begun afresh in a later second whenever a run
/// straddles two.
async fn calls_within_one_second(sim: &Sim, n: usize) -> Vec<Limited> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let second = next_second().await;
        let mut calls = Vec::new();
        for _ in 0..n {
            calls.push(list(sim).await);
        }
        if unix_second() == second {
            return calls;
        }
        assert!(Instant::now() < deadline, "no {n} calls fit in one second");
    }
}

#[tokio::test]
async fn sim_per_second_limit_answers_429_with_retry_after() {
    let sim = Sim::with(SimOptions {
        rps: Some(3),
        ..SimOptions::default()
    })
    .await;
    let calls = calls_within_one_second(&sim, 6).await;
    let statuses: Vec<u16> = calls.iter().map(|c| c.0).collect();
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429]);
    for (_, _, body) in &calls[3..] {
        assert_error(body, 429, "");
    }
    let refused_at = Instant::now();
    let retry_after = calls[5].1.as_deref().expect("Retry-After");
    let secs: u64 = retry_after.parse().expect("whole seconds");
    assert!(secs >= 1);
    // Retry-After is a promise: by then a call passes.
    let patience = Duration::from_secs(secs) + Duration::from_millis(500);
    let passed = crate::helpers::eventually(patience, || async { list(&sim).await.0 == 200 }).await;
    assert!(
        passed,
        "still refused {:?} after a Retry-After of {secs}",
        refused_at.elapsed()
    );
    sim.stop().await;
}

fn header_u64(res: &reqwest::Response, name: &str) -> u64 {
    let value = res.headers()[name].to_str().unwrap();
    value.parse().unwrap_or_else(|_| panic!("{name}: {value}"))
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
        let missing = sim.v1(reqwest::Method::GET, "/v1/sessions/missing");
        let res = missing.send().await.unwrap();
        assert_eq!(res.status(), 404);
        assert_eq!(res.headers()["x-ratelimit-requests-limit"], "3");
        let left = res.headers()["x-ratelimit-requests-remaining"]
            .to_str()
            .unwrap();
        assert_eq!(left, remaining.to_string());
        let reset = header_u64(&res, "x-ratelimit-requests-reset");
        assert!((1..=31 * 86_400).contains(&reset));
    }
    let res = sim
        .v1(reqwest::Method::GET, "/v1/sessions")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert!(header_u64(&res, "retry-after") >= 1);
    assert_eq!(res.headers()["x-ratelimit-requests-remaining"], "0");
    assert_error(&answer(res).await.1, 429, "MONTHLY quota");
    sim.stop().await;
}
