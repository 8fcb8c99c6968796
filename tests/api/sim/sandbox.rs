//! Sandbox mode: the real binary with no upstream key and no database.

use crate::helpers::{provision_with, Provisioned};
use crate::helpers::{shared_tempdir, GatewayProcess, ADMIN_PASSWORD, ADMIN_USER};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Stops the sandbox's embedded cluster whatever happens to the test.
struct EmbeddedCluster(wa_gateway::db::EmbeddedPostgres);

impl Drop for EmbeddedCluster {
    fn drop(&mut self) {
        let _ = self.0.stop();
    }
}

/// `serve`'s settings in sandbox mode: a data directory and an admin, nothing else.
fn sandbox_vars(data: &std::path::Path) -> crate::helpers::Vars {
    [
        ("WAGW_DATA_DIR", data.to_str().unwrap()),
        ("WAGW_LISTEN", "127.0.0.1:0"),
        ("WAGW_SHUTDOWN_TIMEOUT_SECS", "2"),
        ("WAGW_ADMIN_USER", ADMIN_USER),
        ("WAGW_ADMIN_PASSWORD", ADMIN_PASSWORD),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// `serve` with no upstream key and no database: the embedded PostgreSQL starts, the simulator
/// is the upstream, the log says so loudly, and a tenant's sendText goes through end to end
/// (the session scans itself a few seconds after its QR code is fetched).
#[tokio::test]
async fn sim_sandbox_serve_without_key_or_database_sends_end_to_end() {
    let dir = shared_tempdir();
    let data = dir.path().join("data");
    let _cluster = EmbeddedCluster(wa_gateway::db::EmbeddedPostgres::locate(&data, None).unwrap());
    let gateway = GatewayProcess::start(&sandbox_vars(&data)).await;
    let logs = gateway.logs();
    assert!(logs.contains("SANDBOX MODE"), "{logs}");
    assert!(logs.contains("WARN"), "logged as a warning: {logs}");

    let http = reqwest::Client::new();
    let tenant = json!({"name": "sandbox-team", "plan": "pro"});
    let Provisioned { token, key, .. } =
        provision_with(&http, &gateway.address, tenant, &["*"]).await;
    let key = key["key"].as_str().expect("a tenant key").to_owned();
    let call = |method: &str, path: &str, body: Option<Value>| {
        let mut req = http.request(method.parse().unwrap(), gateway.url(path));
        req = req.header("x-rapidapi-key", &key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        async move {
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };

    let (s, _) = call("POST", "/v1/sessions", Some(json!({"name": "default"}))).await;
    assert_eq!(s, 201);
    let (s, qr) = call("GET", "/v1/default/auth/qr?format=raw", None).await;
    assert_eq!(s, 200);
    assert!(qr["value"].is_string(), "{qr}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let session = loop {
        let (_, session) = call("GET", "/v1/sessions/default", None).await;
        if session["status"] == "WORKING" {
            break session;
        }
        assert!(Instant::now() < deadline, "never WORKING: {session}");
        // Slower than the tenant's 10 calls a second.
        tokio::time::sleep(Duration::from_millis(250)).await; // poll
    };
    assert_eq!(
        session["name"], "default",
        "the tenant's own name: {session}"
    );

    let text =
        json!({"session": "default", "chatId": "1234567890", "text": "hello from the sandbox"});
    let (s, message) = call("POST", "/v1/sendText", Some(text)).await;
    assert_eq!(s, 201, "{message}");
    let id = message["id"].as_str().unwrap();
    assert!(id.starts_with("true_1234567890@c.us_"), "{message}");
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
