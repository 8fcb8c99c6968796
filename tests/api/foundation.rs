//! The ground everything stands on: configuration, the error shape, operations endpoints,
//! request ids, readiness against a database that goes away, graceful shutdown.

use crate::helpers::{
    self, base_vars, command, shared_tempdir, spawn_app, spawn_app_with, GatewayProcess, TestDb,
};
use crate::helpers::{provision_with, Provisioned};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The error shape every failure must have, with the given status.
async fn assert_error_shape(res: reqwest::Response, status: u16) -> Value {
    assert_eq!(res.status().as_u16(), status, "status");
    let content_type = res.headers().get("content-type").cloned();
    let json = content_type
        .as_ref()
        .is_some_and(|c| c.as_bytes().starts_with(b"application/json"));
    assert!(json, "content type {content_type:?}");
    let body: Value = res.json().await.expect("a JSON error body");
    assert_eq!(body["statusCode"], status, "{body}");
    assert!(body["error"].is_string(), "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(
        body.as_object().unwrap().len(),
        3,
        "exactly three fields: {body}"
    );
    body
}

#[test]
fn a_bad_setting_stops_the_start_with_one_line_and_exit_code_2() {
    for (var, value) in [
        ("WAGW_LISTEN", "not-an-address"),
        ("WAGW_LOG_FORMAT", "xml"),
        ("WAGW_UPSTREAM_URL", "ftp://example.com"),
        ("DATABASE_URL", "mysql://localhost/db"),
        ("WAGW_UPSTREAM_TIMEOUT_SECS", "soon"),
    ] {
        let vars = [(var.to_owned(), value.to_owned())].into_iter().collect();
        let out = command(&vars).arg("serve").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line for {var}: {stderr}");
        assert!(lines[0].contains(var), "names {var}: {stderr}");
        assert!(lines[0].contains("example:"), "gives an example: {stderr}");
    }
}

/// Every subcommand the CLI defines is listed, each on a line of its own.
#[test]
fn help_lists_the_commands() {
    use clap::CommandFactory;
    let out = command(&Default::default()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let cli = wa_gateway::cli::Cli::command();
    let subcommands: Vec<&str> = cli.get_subcommands().map(|c| c.get_name()).collect();
    for sub in ["serve", "migrate", "openapi", "sim", "admin"] {
        assert!(
            subcommands.contains(&sub),
            "the CLI defines {sub}: {subcommands:?}"
        );
    }
    for sub in subcommands {
        let listed = text
            .lines()
            .any(|l| l.trim_start().starts_with(&format!("{sub} ")));
        assert!(listed, "--help lists {sub}: {text}");
    }
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "ok");
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "ready");
}

#[tokio::test]
async fn actix_failures_come_in_the_error_shape() {
    let app = spawn_app_with(|vars| {
        vars.insert("WAGW_MAX_BODY_BYTES".into(), "1024".into());
    })
    .await;

    let body = assert_error_shape(app.get("/no/such/path").await, 404).await;
    assert_eq!(body["error"], "Not Found");

    let res = app.client.post(app.url("/healthz")).send().await.unwrap();
    let body = assert_error_shape(res, 405).await;
    assert_eq!(body["error"], "Method Not Allowed");

    // A known /v1 path with a method the hosted API does not declare.
    let res = app
        .client
        .put(app.url("/v1/sendText"))
        .send()
        .await
        .unwrap();
    assert_error_shape(res, 405).await;

    // Over the limit: /v1 reads a body only once its caller is authenticated (a stranger's is
    // answered 401 unread), so this one comes with a tenant's key.
    let tenant = app.tenant().await;
    let res = app
        .client
        .post(app.url("/v1/sendText"))
        .header("x-api-key", &tenant.key)
        .header("content-type", "application/json")
        // Over every /v1 limit but the media rows' (which `WAGW_MAX_BODY_BYTES` sets).
        .body(vec![b' '; 300 * 1024])
        .send()
        .await
        .unwrap();
    assert_error_shape(res, 413).await;
}

#[tokio::test]
async fn the_request_id_is_taken_or_made_and_always_echoed() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-abc-123");

    // Made when missing, and different each time.
    let first = app.get("/healthz").await.headers()["x-request-id"].clone();
    let second = app.get("/no/such/path").await.headers()["x-request-id"].clone();
    assert!(!first.is_empty());
    assert_ne!(first, second);

    // A forged id (control characters, too long) is replaced, not echoed.
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "x".repeat(500))
        .send()
        .await
        .unwrap();
    assert_ne!(res.headers()["x-request-id"], "x".repeat(500).as_str());
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/no/such/path").await.status(), 404);
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = res.text().await.unwrap();
    for series in [
        r#"wagw_http_requests_total{method="GET",route="/healthz",status="200"} 1"#,
        // An unknown path is counted under one label, never under the path itself.
        r#"wagw_http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
    ] {
        assert!(text.contains(series), "{series} in {text}");
    }
    assert!(!text.contains("/no/such/path"), "{text}");
    assert!(
        text.contains("wagw_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("wagw_db_pool_connections"), "{text}");
}

/// `/readyz` follows the database: 503 within a second while it is down, 200 once it is back,
/// with no restart of the gateway.
#[tokio::test]
async fn readiness_follows_the_database() {
    let dir = shared_tempdir();
    let cluster = wa_gateway::db::EmbeddedPostgres::locate(dir.path(), None).unwrap();
    let _stop = StopOnDrop(&cluster);
    cluster.start().unwrap();
    let server = cluster.url();
    let db_url = helpers::database_url(&server, "postgres");
    let app = spawn_app_with(|vars| {
        vars.insert("DATABASE_URL".into(), db_url.clone());
    })
    .await;
    assert_eq!(app.get("/readyz").await.status(), 200);

    cluster.stop().unwrap();
    // One ping answers `/readyz` for a second (a flood of probes costs one ping a second), so
    // the 503 comes once that answer is out of date; every answer meanwhile comes at once.
    let stopped = Instant::now();
    let res = loop {
        let started = Instant::now();
        let res = app.get("/readyz").await;
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(1500),
            "answered within a second (took {took:?})"
        );
        if res.status() != 200 {
            break res;
        }
        let patience = wa_gateway::http::ops::READY_CACHE * 5;
        assert!(
            stopped.elapsed() < patience,
            "still ready {patience:?} after the stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await; // poll
    };
    assert_error_shape(res, 503).await;

    cluster.start().unwrap();
    let back = helpers::eventually(Duration::from_secs(20), || async {
        app.get("/readyz").await.status() == 200
    })
    .await;
    assert!(back, "/readyz is 200 again once the database is back");
    app.stop().await;
}

struct StopOnDrop<'a>(&'a wa_gateway::db::EmbeddedPostgres);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.stop();
    }
}

/// SIGTERM lets the process exit cleanly: exit code 0, the port closed.
#[tokio::test]
async fn sigterm_stops_the_process_cleanly() {
    let db = TestDb::create().await;
    let vars = base_vars(&db, "http://127.0.0.1:9");
    let process = GatewayProcess::start(&vars).await;
    let health = process.url("/healthz");
    let status = process.terminate().await;
    assert!(status.success(), "exit status {status}");
    assert!(helpers::http_client().get(health).send().await.is_err());
}

/// JSON logs carry the request id on every line of the request, and no secret.
#[tokio::test]
async fn logs_are_structured_and_carry_the_request_id() {
    let db = TestDb::create().await;
    let mut vars = base_vars(&db, "http://127.0.0.1:9");
    vars.insert("WAGW_LOG_FORMAT".into(), "json".into());
    let process = GatewayProcess::start(&vars).await;
    let res = helpers::http_client()
        .get(process.url("/no/such/path"))
        .header("x-request-id", "log-trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let seen = helpers::eventually(Duration::from_secs(5), || async {
        process.logs().contains("log-trace-42")
    })
    .await;
    assert!(seen, "the access line names the request id");
    let logs = process.logs();
    for line in logs.lines().filter(|l| l.contains("log-trace-42")) {
        let v: Value = serde_json::from_str(line).expect("every log line is JSON");
        assert_eq!(v["span"]["request_id"], "log-trace-42", "{line}");
    }
    assert!(
        !logs.contains(helpers::UPSTREAM_KEY),
        "the upstream key is never logged"
    );
    assert!(
        !logs.contains(helpers::TEST_JWT_SECRET),
        "the JWT secret is never logged"
    );
    process.terminate().await;
}

/// Concurrent calls make the pool open connections while serving on every worker, so a later
/// call may well be handed one that a worker opened which stops at SIGTERM.
async fn open_connections_on_every_worker(
    http: &reqwest::Client,
    process: &GatewayProcess,
    token: &str,
) {
    let burst = (0..24).map(|_| {
        http.get(process.url("/admin/v1/tenants"))
            .bearer_auth(token)
            .send()
    });
    for answer in futures_util::future::join_all(burst).await {
        assert_eq!(answer.unwrap().status(), 200);
    }
}

/// SIGTERM while a call is in flight: the call still gets its answer, then the process exits
/// cleanly and new connections are refused. (This caught database connections dying with the
/// HTTP worker runtime that opened them: see `db::pool`.)
#[tokio::test]
async fn sigterm_lets_a_request_in_flight_finish() {
    use wa_gateway::sim::{SimOptions, Simulator};
    let sim = Simulator::start(SimOptions {
        key: Some(helpers::UPSTREAM_KEY.to_owned()),
        ..Default::default()
    })
    .await
    .unwrap();
    let db = TestDb::create().await;
    let vars = base_vars(&db, &sim.url());
    let process = GatewayProcess::start(&vars).await;
    let http = helpers::http_client();
    let tenant = serde_json::json!({"name": "inflight", "plan": "mega"});
    let Provisioned { token, key, .. } =
        provision_with(&http, &process.address, tenant, &["*"]).await;
    let key = key["key"].as_str().unwrap().to_owned();
    open_connections_on_every_worker(&http, &process, &token).await;
    // The upstream takes 1.5 s to answer the list.
    let slow = serde_json::json!({"path": "/v1/sessions", "method": "GET", "delayMs": 1500});
    let fault = http.post(format!("{}/_sim/faults", sim.url())).json(&slow);
    assert!(fault.send().await.unwrap().status().is_success());

    let call = http
        .get(process.url("/v1/sessions"))
        .header("x-api-key", &key);
    let in_flight = tokio::spawn(async move { call.send().await.map(|r| r.status().as_u16()) });
    // In flight: the upstream has received it (and holds it for 1.5 s).
    let arrived = helpers::eventually(Duration::from_secs(10), || async {
        let log = helpers::sim_log_at(&sim.url()).await;
        log.iter()
            .any(|e| e["method"] == "GET" && e["path"] == "/v1/sessions")
    })
    .await;
    assert!(arrived, "the call reached the upstream");
    let health = process.url("/healthz");
    let started = Instant::now();
    let mut process = process;
    process.signal(nix::sys::signal::Signal::SIGTERM);
    let answered = in_flight.await.unwrap();
    assert_eq!(
        answered.ok(),
        Some(200),
        "the call in flight got its answer"
    );
    let status = process.wait_exit(Duration::from_secs(30)).await;
    assert!(status.success(), "exit status {status}");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "it waited for the call"
    );
    assert!(
        http.get(health).send().await.is_err(),
        "no longer accepting"
    );
    sim.stop().await;
}
