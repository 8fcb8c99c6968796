//! The webhook relay end to end: a signed event posted to the gateway's ingress (as the
//! upstream does) reaches a receiver started by the test, once, signed, with the tenant's own
//! session name; retries, isolation, replicas, a SIGKILL and the address check.
//!
//! Until the simulator and the real tenant extractor land, each test sets up what registration
//! leaves behind (tenant, session, subscription, ingress row) in the database and signs events
//! itself with the ingress key, exactly as the upstream would (UPSTREAM.md scheme).

use crate::helpers::{
    base_vars, eventually, spawn_app, spawn_app_full, spawn_app_with, spawn_replica,
    GatewayProcess, TestDb,
};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha512;
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

// ---- A receiver --------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Hit {
    at: Instant,
    method: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Hit {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON delivery")
    }
}

#[derive(Default)]
struct ReceiverState {
    hits: Mutex<Vec<Hit>>,
    /// Answer 503 to this many requests first.
    fail_first: AtomicUsize,
    /// The answer after that (200 unless set).
    status: AtomicU16,
}

/// An HTTP server recording every request, on its own thread and actix runtime.
struct Receiver {
    /// `http://127.0.0.1:PORT`
    base: String,
    /// `{base}/hook`
    url: String,
    state: Arc<ReceiverState>,
    handle: actix_web::dev::ServerHandle,
}

impl Receiver {
    async fn start() -> Self {
        let state = Arc::new(ReceiverState {
            status: AtomicU16::new(200),
            ..Default::default()
        });
        let (tx, rx) = tokio::sync::oneshot::channel();
        let shared = state.clone();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let data = web::Data::from(shared);
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .default_service(web::to(record))
                })
                .workers(1)
                .bind("127.0.0.1:0")
                .unwrap();
                let port = server.addrs()[0].port();
                let server = server.run();
                let _ = tx.send((port, server.handle()));
                let _ = server.await;
            })
        });
        let (port, handle) = rx.await.unwrap();
        Self {
            base: format!("http://127.0.0.1:{port}"),
            url: format!("http://127.0.0.1:{port}/hook"),
            state,
            handle,
        }
    }

    fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize, patience: Duration) -> Vec<Hit> {
        let state = self.state.clone();
        eventually(patience, || {
            let state = state.clone();
            async move { state.hits.lock().unwrap().len() >= n }
        })
        .await;
        self.hits()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

async fn record(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<ReceiverState>,
) -> HttpResponse {
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    state.hits.lock().unwrap().push(Hit {
        at: Instant::now(),
        method: req.method().to_string(),
        headers,
        body: body.to_vec(),
    });
    let failing = state
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        return HttpResponse::ServiceUnavailable().finish();
    }
    HttpResponse::build(
        actix_web::http::StatusCode::from_u16(state.status.load(Ordering::SeqCst)).unwrap(),
    )
    .finish()
}

// ---- What registration leaves behind -----------------------------------------------------------

/// A tenant's session with the gateway's ingress registered for it.
pub(crate) struct Session {
    tenant: Uuid,
    name: String,
    pub(crate) upstream: String,
    pub(crate) token: String,
    pub(crate) ingress_key: String,
}

pub(crate) async fn tenant_session(pool: &PgPool, tenant_name: &str, session: &str) -> Session {
    let tenant = Uuid::new_v4();
    sqlx::query("INSERT INTO tenants (id, name, plan) VALUES ($1, $2, 'custom')")
        .bind(tenant)
        .bind(tenant_name)
        .execute(pool)
        .await
        .unwrap();
    let upstream = format!("gw_{}", Uuid::new_v4().simple());
    sqlx::query(
        "INSERT INTO sessions (id, tenant_id, name, upstream_name) VALUES ($1, $2, $3, $4)",
    )
    .bind(Uuid::new_v4())
    .bind(tenant)
    .bind(session)
    .bind(&upstream)
    .execute(pool)
    .await
    .unwrap();
    let (token, ingress_key) = (
        Uuid::new_v4().simple().to_string(),
        Uuid::new_v4().to_string(),
    );
    sqlx::query("INSERT INTO webhook_ingress (upstream_name, token, hmac_key) VALUES ($1, $2, $3)")
        .bind(&upstream)
        .bind(&token)
        .bind(&ingress_key)
        .execute(pool)
        .await
        .unwrap();
    Session {
        tenant,
        name: session.to_owned(),
        upstream,
        token,
        ingress_key,
    }
}

/// A subscription as `POST /v1/sessions/{session}/webhooks` stores it, and the ingress marked
/// as registered for what it needs (so the reconciler leaves it alone).
async fn subscribe(
    pool: &PgPool,
    s: &Session,
    url: &str,
    events: &[&str],
    hmac_key: Option<&str>,
    (policy, delay, attempts): (&str, i32, i32),
) -> Uuid {
    let id = Uuid::new_v4();
    let events: Vec<String> = events.iter().map(|e| (*e).to_owned()).collect();
    sqlx::query(
        "INSERT INTO webhook_subscriptions (id, tenant_id, session_name, url, events, hmac_key, \
         retry_policy, retry_delay_seconds, retry_attempts, custom_headers) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, '[{\"name\": \"X-Token\", \"value\": \"abc\"}]')",
    )
    .bind(id)
    .bind(s.tenant)
    .bind(&s.name)
    .bind(url)
    .bind(&events)
    .bind(hmac_key)
    .bind(policy)
    .bind(delay)
    .bind(attempts)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE webhook_ingress SET registered_at = now(), events = (SELECT array_agg(DISTINCT e ORDER BY e) \
         FROM webhook_subscriptions w, unnest(w.events) e WHERE w.tenant_id = $2 AND w.session_name = $3) \
         WHERE upstream_name = $1",
    )
    .bind(&s.upstream)
    .bind(s.tenant)
    .bind(&s.name)
    .execute(pool)
    .await
    .unwrap();
    id
}

const DEFAULT_POLICY: (&str, i32, i32) = ("exponential", 2, 5);

fn event(s: &Session, id: &str, name: &str, payload: Value) -> Value {
    json!({
        "id": id, "timestamp": chrono::Utc::now().timestamp_millis(), "event": name, "session": s.upstream,
        "metadata": {"user.id": "123"}, "me": {"id": "71111111111@c.us", "pushName": "~"},
        "payload": payload, "engine": "WEBJS",
        "environment": {"version": "2026.7.1", "tier": "PLUS"}
    })
}

fn sign(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha512>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Posts `event` to the gateway's ingress as the upstream does, signed with `key`.
async fn post_signed(base: &str, token: &str, key: &str, event: &Value) -> reqwest::Response {
    let body = serde_json::to_vec(event).unwrap();
    reqwest::Client::new()
        .post(format!("{base}/webhooks/ingress/{token}"))
        .header("content-type", "application/json")
        .header("x-webhook-hmac", sign(key, &body))
        .header("x-webhook-hmac-algorithm", "sha512")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn deliver(base: &str, s: &Session, event: &Value) {
    let r = post_signed(base, &s.token, &s.ingress_key, event).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
}

fn event_ids(hits: &[Hit]) -> Vec<String> {
    hits.iter()
        .map(|h| h.json()["id"].as_str().unwrap().to_owned())
        .collect()
}

// ---- Tests ---------------------------------------------------------------------------------------

#[tokio::test]
async fn an_event_arrives_once_signed_and_with_the_tenants_session_name() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let s = tenant_session(&app.pool, "acme", "default").await;
    subscribe(
        &app.pool,
        &s,
        &receiver.url,
        &["message", "message.any"],
        Some("my-secret-key"),
        DEFAULT_POLICY,
    )
    .await;

    let incoming = json!({"id": "false_1@c.us_AAA", "fromMe": false, "body": "hi"});
    let outgoing = json!({"id": "true_1@c.us_BBB", "fromMe": true, "body": "yo"});
    let first = event(&s, "evt_1", "message", incoming.clone());
    deliver(&app.address, &s, &first).await;
    // The same incoming message as `message.any`: the subscription has `message`, so not again.
    deliver(
        &app.address,
        &s,
        &event(&s, "evt_2", "message.any", incoming),
    )
    .await;
    // An outgoing one only comes as `message.any`.
    deliver(
        &app.address,
        &s,
        &event(&s, "evt_3", "message.any", outgoing),
    )
    .await;
    // The upstream retrying an event we already acknowledged.
    deliver(&app.address, &s, &first).await;

    let hits = receiver.wait_for(2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let hits_after = receiver.hits();
    assert_eq!(
        hits_after.len(),
        2,
        "exactly two deliveries: {:?}",
        event_ids(&hits_after)
    );
    let mut ids = event_ids(&hits);
    ids.sort();
    assert_eq!(ids, vec!["evt_1", "evt_3"]);

    for hit in &hits {
        let body = hit.json();
        assert_eq!(body["session"], "default");
        assert_eq!(body["metadata"]["user.id"], "123");
        let raw = String::from_utf8(hit.body.clone()).unwrap();
        assert!(
            !raw.contains(&s.upstream),
            "the upstream name leaked: {raw}"
        );
        assert!(!raw.contains(&s.ingress_key) && !raw.contains(&s.token));
        // A receiver written for the upstream verifies ours unchanged.
        assert_eq!(
            hit.headers["x-webhook-hmac"],
            sign("my-secret-key", &hit.body)
        );
        assert_eq!(hit.headers["x-webhook-hmac-algorithm"], "sha512");
        assert_eq!(hit.headers["x-token"], "abc");
        assert!(!hit.headers["x-webhook-request-id"].is_empty());
        let ts: i64 = hit.headers["x-webhook-timestamp"].parse().unwrap();
        assert!((ts - chrono::Utc::now().timestamp_millis()).abs() < 60_000);
    }
    assert_ne!(
        hits[0].headers["x-webhook-request-id"],
        hits[1].headers["x-webhook-request-id"]
    );
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 3, "the repeated event was stored once");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"wagw_webhook_deliveries_total{outcome="delivered"} 2"#),
        "{metrics}"
    );
    assert!(metrics.contains("wagw_webhook_attempt_duration_seconds_count"));
    assert!(metrics.contains("wagw_webhook_outbox_depth 0"));
}

#[tokio::test]
async fn ingress_refuses_anything_not_signed_with_the_sessions_key() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let s = tenant_session(&app.pool, "acme", "default").await;
    subscribe(
        &app.pool,
        &s,
        &receiver.url,
        &["message"],
        None,
        DEFAULT_POLICY,
    )
    .await;
    let e = event(&s, "evt_1", "message", json!({"fromMe": false}));

    let wrong_key = post_signed(&app.address, &s.token, "not-the-key", &e).await;
    assert_eq!(wrong_key.status(), 401);
    let body: Value = wrong_key.json().await.unwrap();
    assert_eq!(body["statusCode"], 401);
    assert_eq!(body["error"], "Unauthorized");

    let unsigned = reqwest::Client::new()
        .post(format!("{}/webhooks/ingress/{}", app.address, s.token))
        .json(&e)
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let unknown_token = post_signed(&app.address, "nope", &s.ingress_key, &e).await;
    assert_eq!(unknown_token.status(), 401);
    // A valid signature over other bytes than those sent.
    let tampered = reqwest::Client::new()
        .post(format!("{}/webhooks/ingress/{}", app.address, s.token))
        .header("x-webhook-hmac", sign(&s.ingress_key, b"{}"))
        .json(&e)
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), 401);

    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(receiver.hits().is_empty());
}

#[tokio::test]
async fn a_tenant_never_receives_another_tenants_events() {
    let app = spawn_app().await;
    let (ra, rb) = (Receiver::start().await, Receiver::start().await);
    let a = tenant_session(&app.pool, "alpha", "default").await;
    let b = tenant_session(&app.pool, "beta", "default").await;
    subscribe(&app.pool, &a, &ra.url, &["message"], None, DEFAULT_POLICY).await;
    subscribe(&app.pool, &b, &rb.url, &["message"], None, DEFAULT_POLICY).await;

    for i in 0..3 {
        deliver(
            &app.address,
            &a,
            &event(&a, &format!("a_{i}"), "message", json!({})),
        )
        .await;
    }
    deliver(&app.address, &b, &event(&b, "b_0", "message", json!({}))).await;
    // B's token with A's key: refused, nothing crosses over.
    let crossed = post_signed(
        &app.address,
        &b.token,
        &a.ingress_key,
        &event(&b, "x", "message", json!({})),
    )
    .await;
    assert_eq!(crossed.status(), 401);

    let got_a = ra.wait_for(3, Duration::from_secs(10)).await;
    let got_b = rb.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let mut ids_a = event_ids(&ra.hits());
    ids_a.sort();
    assert_eq!(ids_a, vec!["a_0", "a_1", "a_2"]);
    assert_eq!(event_ids(&rb.hits()), vec!["b_0"]);
    assert!(got_a
        .iter()
        .chain(&got_b)
        .all(|h| h.json()["session"] == "default"));
}

#[tokio::test]
async fn a_receiver_failing_twice_gets_the_event_on_the_third_attempt_at_the_policys_spacing() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.state.fail_first.store(2, Ordering::SeqCst);
    let s = tenant_session(&app.pool, "acme", "default").await;
    subscribe(
        &app.pool,
        &s,
        &receiver.url,
        &["message"],
        Some("k"),
        ("exponential", 1, 5),
    )
    .await;
    deliver(&app.address, &s, &event(&s, "evt_1", "message", json!({}))).await;

    let hits = receiver.wait_for(3, Duration::from_secs(15)).await;
    assert_eq!(hits.len(), 3);
    // Exponential from 1 s with ~20% jitter: about 1 s, then about 2 s (plus a little slack for
    // scheduling).
    let gap1 = hits[1].at - hits[0].at;
    let gap2 = hits[2].at - hits[1].at;
    assert!(
        gap1 >= Duration::from_millis(790) && gap1 <= Duration::from_millis(1700),
        "{gap1:?}"
    );
    assert!(
        gap2 >= Duration::from_millis(1590) && gap2 <= Duration::from_millis(2900),
        "{gap2:?}"
    );
    // Every attempt carries the same bytes and signature, and its own request id.
    assert!(hits.iter().all(|h| h.body == hits[0].body));
    let request_ids: HashSet<_> = hits
        .iter()
        .map(|h| h.headers["x-webhook-request-id"].clone())
        .collect();
    assert_eq!(request_ids.len(), 3);

    let delivered = eventually(Duration::from_secs(5), || async {
        let row: (String, i32, Option<i32>) =
            sqlx::query_as("SELECT status, attempts, last_status FROM webhook_deliveries")
                .fetch_one(&app.pool)
                .await
                .unwrap();
        row == ("delivered".to_owned(), 3, Some(200))
    })
    .await;
    assert!(
        delivered,
        "the delivery is recorded as delivered on attempt 3"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.hits().len(), 3, "nothing after the success");
}

#[tokio::test]
async fn a_4xx_stops_at_once_and_exhausted_deliveries_are_kept_as_failed() {
    let app = spawn_app().await;
    let (gone, down) = (Receiver::start().await, Receiver::start().await);
    gone.state.status.store(410, Ordering::SeqCst);
    down.state.status.store(500, Ordering::SeqCst);
    let s = tenant_session(&app.pool, "acme", "default").await;
    subscribe(
        &app.pool,
        &s,
        &gone.url,
        &["message"],
        None,
        ("constant", 1, 5),
    )
    .await;
    subscribe(
        &app.pool,
        &s,
        &down.url,
        &["message"],
        None,
        ("constant", 1, 2),
    )
    .await;
    deliver(&app.address, &s, &event(&s, "evt_1", "message", json!({}))).await;

    let settled = eventually(Duration::from_secs(10), || async {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE status = 'failed'")
                .fetch_one(&app.pool)
                .await
                .unwrap();
        n == 2
    })
    .await;
    assert!(settled, "both deliveries end failed");
    assert_eq!(gone.hits().len(), 1, "a 410 is not retried");
    assert_eq!(
        down.hits().len(),
        2,
        "a 500 is retried until the 2 attempts are spent"
    );
    let rows: Vec<(i32, Option<i32>)> =
        sqlx::query_as("SELECT attempts, last_status FROM webhook_deliveries ORDER BY attempts")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(rows, vec![(1, Some(410)), (2, Some(500))]);
}

#[tokio::test]
async fn two_replicas_deliver_each_event_exactly_once() {
    let a = spawn_app().await;
    let b = spawn_replica(&a).await;
    let receiver = Receiver::start().await;
    let s = tenant_session(&a.pool, "acme", "default").await;
    subscribe(
        &a.pool,
        &s,
        &receiver.url,
        &["message"],
        None,
        DEFAULT_POLICY,
    )
    .await;

    const N: usize = 60;
    for i in 0..N {
        let base = if i % 2 == 0 { &a.address } else { &b.address };
        deliver(
            base,
            &s,
            &event(&s, &format!("evt_{i}"), "message", json!({})),
        )
        .await;
    }
    receiver.wait_for(N, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ids = event_ids(&receiver.hits());
    let distinct: HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), N, "every event arrived");
    assert_eq!(ids.len(), N, "and none twice");
}

#[tokio::test]
async fn a_private_address_is_refused_at_delivery_when_not_allowed() {
    let app = spawn_app_with(|vars| {
        vars.insert("WAGW_WEBHOOK_ALLOW_PRIVATE".into(), "false".into());
    })
    .await;
    let receiver = Receiver::start().await;
    let s = tenant_session(&app.pool, "acme", "default").await;
    // Stored directly: registration would already refuse it; a name that later resolves to a
    // private address is caught the same way, on the resolved address.
    let url = receiver.url.replace("127.0.0.1", "localhost");
    subscribe(&app.pool, &s, &url, &["message"], None, DEFAULT_POLICY).await;
    deliver(&app.address, &s, &event(&s, "evt_1", "message", json!({}))).await;

    let refused = eventually(Duration::from_secs(10), || async {
        let row: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT status, last_error FROM webhook_deliveries",
        )
        .fetch_optional(&app.pool)
        .await
        .unwrap();
        matches!(row, Some((status, Some(error))) if status == "failed" && error.contains("internal address"))
    })
    .await;
    assert!(refused, "the delivery fails on the address check");
    assert!(
        receiver.hits().is_empty(),
        "nothing reached the private address"
    );
}

#[tokio::test]
async fn after_a_sigkill_with_deliveries_pending_every_event_arrives() {
    let db = TestDb::create().await;
    let vars = base_vars(&db, "http://127.0.0.1:9");
    let gateway = GatewayProcess::start(&vars).await;
    let pool = db.pool().await;
    let receiver = Receiver::start().await;
    receiver.state.status.store(503, Ordering::SeqCst);
    let s = tenant_session(&pool, "acme", "default").await;
    subscribe(
        &pool,
        &s,
        &receiver.url,
        &["message"],
        None,
        ("constant", 1, 20),
    )
    .await;

    const N: usize = 10;
    for i in 0..N {
        deliver(
            &gateway.address,
            &s,
            &event(&s, &format!("evt_{i}"), "message", json!({})),
        )
        .await;
    }
    // Every event has been tried (and refused) at least once: all are pending, mid-retry.
    receiver.wait_for(N, Duration::from_secs(10)).await;
    gateway.kill().await;

    receiver.state.status.store(200, Ordering::SeqCst);
    let before = receiver.hits().len();
    let restarted = GatewayProcess::start(&vars).await;
    let all_arrived = eventually(Duration::from_secs(40), || async {
        let delivered: HashSet<String> =
            event_ids(&receiver.hits()[before..]).into_iter().collect();
        delivered.len() == N
    })
    .await;
    assert!(
        all_arrived,
        "every event arrives after the restart:\n{}",
        restarted.logs()
    );
    // The receiver saw them; the rows record it a moment later.
    let recorded = eventually(Duration::from_secs(10), || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        n == N as i64
    })
    .await;
    assert!(recorded, "every delivery is recorded as delivered");
}

#[tokio::test]
async fn the_gateway_registers_its_own_ingress_and_keeps_it_in_step() {
    // A stand-in upstream that accepts every registration and records it.
    let upstream = Receiver::start().await;
    upstream.state.status.store(201, Ordering::SeqCst);
    let app = spawn_app_full(|opts| {
        opts.sim = None;
        opts.vars
            .insert("WAGW_UPSTREAM_URL".into(), upstream.base.clone());
    })
    .await;
    let receiver = Receiver::start().await;
    // A session created (again) under a name that already has subscriptions: no ingress yet.
    let s = tenant_session(&app.pool, "acme", "default").await;
    sqlx::query("DELETE FROM webhook_ingress")
        .execute(&app.pool)
        .await
        .unwrap();
    subscribe(
        &app.pool,
        &s,
        &receiver.url,
        &["message.ack", "message"],
        None,
        DEFAULT_POLICY,
    )
    .await;
    subscribe(
        &app.pool,
        &s,
        &format!("{}/other", receiver.base),
        &["message", "session.status"],
        None,
        DEFAULT_POLICY,
    )
    .await;

    let ingress_events = || async {
        sqlx::query_scalar::<_, Option<Vec<String>>>("SELECT events FROM webhook_ingress")
            .fetch_optional(&app.pool)
            .await
            .unwrap()
            .flatten()
    };
    let union = vec!["message", "message.ack", "session.status"];
    assert!(
        eventually(Duration::from_secs(10), || async {
            ingress_events().await == Some(union.iter().map(|e| e.to_string()).collect())
        })
        .await,
        "the ingress is registered for the union of the subscriptions' events"
    );
    let calls = upstream.hits();
    let call = calls.last().unwrap();
    assert_eq!(call.method, "POST");
    assert_eq!(call.headers["x-rapidapi-key"], crate::helpers::UPSTREAM_KEY);
    let body = call.json();
    assert_eq!(body["events"], json!(union));
    let webhook_url = body["webhookUrl"].as_str().unwrap().to_owned();
    assert!(
        webhook_url.starts_with(&format!("{}/webhooks/ingress/", app.address)),
        "{webhook_url}"
    );
    assert!(
        calls.iter().all(|c| c.json()["webhookUrl"] == webhook_url),
        "one URL per session"
    );
    let token = webhook_url.rsplit('/').next().unwrap();
    assert!(token.len() >= 40, "an unguessable token");
    let key = body["hmacKey"].as_str().unwrap().to_owned();
    let posts = calls.len();

    // The upstream now posts events there, signed with that key.
    let e = event(&s, "evt_1", "message.ack", json!({"ack": 3}));
    let r = post_signed(&app.address, token, &key, &e).await;
    assert_eq!(r.status(), 200);
    let hits = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(hits[0].json()["event"], "message.ack");
    assert_eq!(hits[0].json()["session"], "default");

    // Every subscription removed: the registration is withdrawn.
    sqlx::query("DELETE FROM webhook_subscriptions")
        .execute(&app.pool)
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            ingress_events().await.is_none()
        })
        .await,
        "the registration is withdrawn"
    );
    let calls = upstream.hits();
    assert_eq!(calls.len(), posts + 1);
    assert_eq!(calls[posts].method, "DELETE");
    assert_eq!(calls[posts].json()["webhookUrl"], webhook_url);
}

/// The relay's throughput and latency, end to end: events posted to the ingress (signed, as the
/// upstream does) by `WAGW_BENCH_CONCURRENCY` senders, until a receiver has every one of them.
/// Run by `bench/webhooks.sh`; ignored in the normal suite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with bench/webhooks.sh"]
async fn relay_benchmark() {
    let n: usize = std::env::var("WAGW_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let concurrency: usize = std::env::var("WAGW_BENCH_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let app = spawn_app_with(|vars| {
        vars.insert("WAGW_DB_MAX_CONNECTIONS".into(), "20".into());
        vars.insert("RUST_LOG".into(), "warn".into());
    })
    .await;
    let receiver = Receiver::start().await;
    let s = Arc::new(tenant_session(&app.pool, "acme", "default").await);
    subscribe(
        &app.pool,
        &s,
        &receiver.url,
        &["message"],
        Some("bench-key"),
        DEFAULT_POLICY,
    )
    .await;

    let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..concurrency {
        let (s, sent_at, next, base) = (
            s.clone(),
            sent_at.clone(),
            next.clone(),
            app.address.clone(),
        );
        senders.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    return;
                }
                let id = format!("evt_{i}");
                let e = event(
                    &s,
                    &id,
                    "message",
                    json!({"body": "benchmark", "fromMe": false}),
                );
                let body = serde_json::to_vec(&e).unwrap();
                let signature = sign(&s.ingress_key, &body);
                sent_at.lock().unwrap().insert(id, Instant::now());
                let r = client
                    .post(format!("{base}/webhooks/ingress/{}", s.token))
                    .header("content-type", "application/json")
                    .header("x-webhook-hmac", signature)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        }));
    }
    for sender in senders {
        sender.await.unwrap();
    }
    let ingested = started.elapsed();
    let hits = receiver.wait_for(n, Duration::from_secs(300)).await;
    assert_eq!(hits.len(), n, "every event arrived");
    let last = hits.iter().map(|h| h.at).max().unwrap();
    let relayed = last - started;
    let sent_at = sent_at.lock().unwrap();
    let mut latencies: Vec<Duration> = hits
        .iter()
        .map(|h| h.at - sent_at[h.json()["id"].as_str().unwrap()])
        .collect();
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    let distinct: HashSet<_> = event_ids(&hits).into_iter().collect();
    assert_eq!(distinct.len(), n, "none twice");
    println!(
        "webhook relay: {n} events, {concurrency} senders: ingress {:.0} events/s; relayed end to end {:.0} events/s; \
         ingress->receiver p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        n as f64 / ingested.as_secs_f64(),
        n as f64 / relayed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
    );
}

/// Waits until the simulator's session has `status`.
async fn sim_status(sim: &str, session: &str, status: &str) -> bool {
    eventually(Duration::from_secs(10), || async {
        let s: Value = reqwest::get(format!("{sim}/_sim/sessions/{session}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        s["status"] == status
    })
    .await
}

#[tokio::test]
async fn through_the_simulator_an_incoming_message_arrives_once_signed_with_the_tenants_name() {
    let sim = wa_gateway::sim::Simulator::start(wa_gateway::sim::SimOptions::default())
        .await
        .unwrap();
    let app = spawn_app_full(|opts| {
        opts.sim = None;
        opts.vars.insert("WAGW_UPSTREAM_URL".into(), sim.url());
    })
    .await;
    let receiver = Receiver::start().await;
    // The tenant's session, as session creation leaves it: our row, and the upstream's session.
    let s = tenant_session(&app.pool, "acme", "default").await;
    sqlx::query("DELETE FROM webhook_ingress")
        .execute(&app.pool)
        .await
        .unwrap();
    let created = reqwest::Client::new()
        .post(format!("{}/v1/sessions", sim.url()))
        .json(&json!({"name": s.upstream}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert!(sim_status(&sim.url(), &s.upstream, "SCAN_QR_CODE").await);
    let scanned = reqwest::Client::new()
        .post(format!("{}/_sim/sessions/{}/scan", sim.url(), s.upstream))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(scanned.status(), 200);
    assert!(sim_status(&sim.url(), &s.upstream, "WORKING").await);

    subscribe(
        &app.pool,
        &s,
        &receiver.url,
        &["message", "message.any", "message.ack"],
        Some("tenant-secret"),
        DEFAULT_POLICY,
    )
    .await;
    // The gateway registers its ingress with the upstream for what the subscription needs.
    let registered = eventually(Duration::from_secs(10), || async {
        let s: Value = reqwest::get(format!("{}/_sim/sessions/{}", sim.url(), s.upstream))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        s["webhooks"].as_array().is_some_and(|w| w.len() == 1)
    })
    .await;
    assert!(
        registered,
        "the gateway's ingress is registered with the upstream"
    );

    let incoming: Value = reqwest::Client::new()
        .post(format!(
            "{}/_sim/sessions/{}/incoming",
            sim.url(),
            s.upstream
        ))
        .json(&json!({"from": "1234567890", "text": "hello"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hits = receiver.wait_for(1, Duration::from_secs(10)).await;
    // `message` and `message.any` both fired; the subscription has both: once.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        receiver.hits().len(),
        1,
        "{:?}",
        event_ids(&receiver.hits())
    );
    let hit = &hits[0];
    let body = hit.json();
    assert_eq!(body["event"], "message");
    assert_eq!(body["session"], "default");
    assert_eq!(body["payload"]["body"], "hello");
    assert_eq!(body["payload"]["id"], incoming["id"]);
    assert!(!String::from_utf8_lossy(&hit.body).contains(&s.upstream));
    assert_eq!(
        hit.headers["x-webhook-hmac"],
        sign("tenant-secret", &hit.body)
    );
    assert_eq!(hit.headers["x-webhook-hmac-algorithm"], "sha512");

    let acked = reqwest::Client::new()
        .post(format!("{}/_sim/sessions/{}/ack", sim.url(), s.upstream))
        .json(&json!({"messageId": incoming["id"], "ack": 3}))
        .send()
        .await
        .unwrap();
    assert!(acked.status().is_success());
    let hits = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(hits[1].json()["event"], "message.ack");
    assert_eq!(hits[1].json()["session"], "default");
    sim.stop().await;
}

#[tokio::test]
async fn a_tenant_registers_lists_and_removes_webhooks_and_replays_deliveries() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let tenant = app.tenant().await;
    let upstream = app.working_session(&tenant, "default").await;
    let path = "/v1/sessions/default/webhooks";

    // Validation: the seed's event names only, http(s) only.
    let bad = app
        .tenant_post(
            &tenant,
            path,
            json!({"webhookUrl": receiver.url, "events": ["message", "msg"]}),
        )
        .await;
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("message.revoked"),
        "{body}"
    );
    let bad = app
        .tenant_post(&tenant, path, json!({"webhookUrl": "ftp://example.com/x"}))
        .await;
    assert_eq!(bad.status(), 400);
    // Another tenant's session, or none: 404.
    let other = app.tenant().await;
    let res = app
        .tenant_post(&other, path, json!({"webhookUrl": receiver.url}))
        .await;
    assert_eq!(res.status(), 404);

    let res = app
        .tenant_post(
            &tenant,
            path,
            json!({"webhookUrl": receiver.url, "events": ["message", "message.any"],
                   "hmacKey": "tenant-key", "retries": {"policy": "constant", "delaySeconds": 1, "attempts": 3},
                   "customHeaders": [{"name": "X-Token", "value": "secret-token"}]}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["webhookUrl"], receiver.url);
    assert!(
        !created.to_string().contains("tenant-key")
            && !created.to_string().contains("secret-token")
    );
    // When the 201 came, the upstream already had the gateway's registration.
    let session: Value = reqwest::get(format!("{}/_sim/sessions/{upstream}", app.sim().url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let registered = &session["webhooks"][0];
    assert!(
        registered["url"]
            .as_str()
            .unwrap_or_default()
            .contains("/webhooks/ingress/")
            || registered["webhookUrl"]
                .as_str()
                .unwrap_or_default()
                .contains("/webhooks/ingress/"),
        "{session}"
    );

    let listed: Value = app.tenant_get(&tenant, path).await.json().await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["events"], json!(["message", "message.any"]));
    assert_eq!(listed[0]["signed"], true);
    let listed_other = app.tenant_get(&other, path).await;
    assert_eq!(listed_other.status(), 404);

    let res = app
        .sim_post(
            &format!("/_sim/sessions/{upstream}/incoming"),
            json!({"from": "1234567890", "text": "hi"}),
        )
        .await;
    assert!(res.status().is_success());
    let hits = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(hits[0].json()["session"], "default");
    assert_eq!(
        hits[0].headers["x-webhook-hmac"],
        sign("tenant-key", &hits[0].body)
    );
    assert_eq!(hits[0].headers["x-token"], "secret-token");

    let delivered = eventually(Duration::from_secs(5), || async {
        let d: Value = app
            .tenant_get(&tenant, "/v1/sessions/default/webhooks/deliveries")
            .await
            .json()
            .await
            .unwrap();
        d.as_array()
            .is_some_and(|d| d.len() == 1 && d[0]["status"] == "delivered")
    })
    .await;
    assert!(delivered);
    let deliveries: Value = app
        .tenant_get(&tenant, "/v1/sessions/default/webhooks/deliveries")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(deliveries[0]["attempts"], 1);
    assert_eq!(deliveries[0]["lastStatusCode"], 200);
    assert_eq!(deliveries[0]["event"], "message");
    let id = deliveries[0]["id"].as_str().unwrap();
    let res = app
        .tenant_post(
            &tenant,
            &format!("/v1/sessions/default/webhooks/deliveries/{id}/redeliver"),
            json!({}),
        )
        .await;
    assert_eq!(res.status(), 202);
    let hits = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(hits[1].body, hits[0].body, "the same event again");
    // Admins see every tenant's deliveries; tenants do not reach the admin listing.
    let (status, all) = app
        .admin(
            reqwest::Method::GET,
            &format!("/admin/v1/webhooks/deliveries?tenant={}", tenant.id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all[0]["id"], id);
    assert_eq!(all[0]["sessionName"], "default");
    assert_eq!(all[0]["tenantId"], tenant.id);
    let res = app
        .call(
            &tenant,
            reqwest::Method::GET,
            "/admin/v1/webhooks/deliveries",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = app
        .tenant_post(
            &other,
            &format!("/v1/sessions/default/webhooks/deliveries/{id}/redeliver"),
            json!({}),
        )
        .await;
    assert_eq!(res.status(), 404);

    let res = app
        .call(
            &tenant,
            reqwest::Method::DELETE,
            &format!("{path}?webhookUrl={}", receiver.url),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let listed: Value = app.tenant_get(&tenant, path).await.json().await.unwrap();
    assert_eq!(listed, json!([]));
    let session: Value = reqwest::get(format!("{}/_sim/sessions/{upstream}", app.sim().url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        session["webhooks"],
        json!([]),
        "the upstream registration is withdrawn"
    );
}
