//! Hostile callers: a tenant attacking the organisation or another tenant through the `/v1`
//! proxy (security review H2, H3, M3, M4, L2, L3, L8; conformance A8, A9, B1). See mod.rs.

use crate::helpers::*;
use serde_json::{json, Value};

async fn app_with_session() -> (TestApp, TestTenant, String) {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let upstream = app.working_session(&tenant, "default").await;
    app.clear_sim_log().await;
    (app, tenant, upstream)
}

/// A call made directly on the upstream (the simulator), with the organisation's key.
async fn upstream_post(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.client
        .post(format!("{}{path}", app.sim().url()))
        .header("x-rapidapi-key", UPSTREAM_KEY)
        .header("x-rapidapi-host", wa_gateway::sim::DEFAULT_HOST)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A request sent byte for byte as written: HTTP clients resolve dot segments themselves.
async fn raw_request(app: &TestApp, method: &str, path: &str, key: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nx-api-key: {key}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let head = String::from_utf8_lossy(&answer);
    head.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn calls_to(log: &[Value], path_prefix: &str) -> usize {
    log.iter()
        .filter(|c| c["path"].as_str().unwrap_or("").starts_with(path_prefix))
        .count()
}

/// H3: a sendText padded with a 3 MB array is refused by its size, never parsed or forwarded.
#[tokio::test]
async fn a_3mb_padded_send_text_is_413_and_never_forwarded() {
    let (app, tenant, _) = app_with_session().await;
    let pad = vec!["x".repeat(1000); 3_000];
    let body = json!({"chatId": "1234567890", "text": "x", "pad": pad});
    let res = app.tenant_post(&tenant, "/v1/sendText", body).await;
    assert_eq!(res.status(), 413);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["statusCode"], 413, "{body}");
    assert_eq!(calls_to(&app.sim_log().await, "/v1/"), 0);
}

/// H3: a non-media row takes at most 256 KiB.
#[tokio::test]
async fn a_300kib_non_media_body_is_413() {
    let (app, tenant, _) = app_with_session().await;
    let text = "a".repeat(300 * 1024);
    let res = app
        .tenant_post(
            &tenant,
            "/v1/sendText",
            json!({"chatId": "1234567890", "text": text}),
        )
        .await;
    assert_eq!(res.status(), 413);
    assert_eq!(calls_to(&app.sim_log().await, "/v1/"), 0);
    // A media row still takes a body of that size.
    let data = base64_of(300 * 1024);
    let res = app
        .tenant_post(
            &tenant,
            "/v1/sendImage",
            json!({"chatId": "1234567890", "file": {"mimetype": "image/png", "data": data}}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
}

fn base64_of(len: usize) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(vec![7u8; len])
}

/// H2: a stranger's 16 MB body is answered 401 without being read.
#[tokio::test]
async fn an_unauthenticated_16mb_body_is_401_unread() {
    let app = spawn_app().await;
    let body = vec![b' '; 16 * 1024 * 1024];
    let started = std::time::Instant::now();
    let res = app
        .client
        .post(app.url("/v1/sendText"))
        .header("content-type", "application/json")
        .header("x-api-key", "wagw_nope")
        .body(body)
        .send()
        .await;
    // The gateway may answer before the upload ends and close: either way not after reading.
    if let Ok(res) = res {
        assert_eq!(res.status(), 401);
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

/// M3: dot segments and encoded separators in a templated segment answer 400 and reach nothing.
#[tokio::test]
async fn dot_segments_and_encoded_separators_in_path_params_are_400() {
    let (app, tenant, _) = app_with_session().await;
    for segment in [
        "..",
        "..%2F..%2Fzz",
        "%2e%2e",
        "a%5Cb@g.us",
        "1%00@g.us",
        ".",
    ] {
        let path = format!("/v1/sessions/default/groups/{segment}");
        assert_eq!(
            raw_request(&app, "DELETE", &path, &tenant.key).await,
            400,
            "{path}"
        );
    }
    for segment in ["..", "not-a-channel", "x%2F..%2Fy"] {
        let path = format!("/v1/sessions/default/channels/{segment}");
        assert_eq!(
            raw_request(&app, "DELETE", &path, &tenant.key).await,
            400,
            "{path}"
        );
    }
    assert_eq!(calls_to(&app.sim_log().await, "/v1/"), 0);
    // Well-formed ids still pass.
    let res = app
        .tenant_get(&tenant, "/v1/sessions/default/groups/123-456@g.us")
        .await;
    assert_ne!(res.status(), 400);
    let res = app
        .tenant_get(&tenant, "/v1/sessions/default/channels/123@newsletter")
        .await;
    assert_ne!(res.status(), 400);
    let res = app
        .tenant_get(
            &tenant,
            "/v1/sessions/default/channels/0029VaAbCdEf1234567890",
        )
        .await;
    assert_ne!(res.status(), 400);
}

/// M4: `config.proxy` would send the organisation's traffic elsewhere: 400 naming it.
#[tokio::test]
async fn config_proxy_on_create_is_400_naming_the_field() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let res = app
        .tenant_post(
            &tenant,
            "/v1/sessions",
            json!({"name": "bot", "config": {"proxy": {"server": "10.0.0.5:3128"}}}),
        )
        .await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("config.proxy"),
        "{body}"
    );
    assert_eq!(calls_to(&app.sim_log().await, "/v1/"), 0);
    let owned = app.rows("sessions").await;
    assert_eq!(owned, 0);
}

/// M4 / issue 12: `config.webhooks` becomes the tenant's relayed subscriptions: the tenant's
/// URL and key never reach the upstream, the subscription is listed with the relay's own, and
/// session answers show it without its key.
#[tokio::test]
async fn config_webhooks_on_create_never_reach_the_upstream() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let res = app
        .tenant_post(
            &tenant,
            "/v1/sessions",
            json!({"name": "bot", "config": {
                "metadata": {"team": "a"},
                "webhooks": [{"url": "http://10.0.0.5/hook", "events": ["message"],
                              "hmac": {"key": "TENANT_HMAC_KEY"}}]
            }}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    let log = app.sim_log().await;
    let sent = serde_json::to_string(&log).unwrap();
    assert!(!sent.contains("10.0.0.5"), "{sent}");
    assert!(!sent.contains("TENANT_HMAC_KEY"), "{sent}");
    // Only the gateway's ingress is registered upstream.
    let upstream = app.upstream_name(&tenant, "bot").await;
    let sim_session = app
        .client
        .get(format!("{}/_sim/sessions/{upstream}", app.sim().url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!sim_session.contains("10.0.0.5"), "{sim_session}");

    let listed: Value = app
        .tenant_get(&tenant, "/v1/sessions/bot/webhooks")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["webhookUrl"], "http://10.0.0.5/hook");
    assert_eq!(listed[0]["signed"], true);

    let got: Value = app
        .tenant_get(&tenant, "/v1/sessions/bot")
        .await
        .json()
        .await
        .unwrap();
    let all: Value = app
        .tenant_get(&tenant, "/v1/sessions")
        .await
        .json()
        .await
        .unwrap();
    let from_list = all
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "bot")
        .cloned()
        .unwrap();
    for answer in [&created, &got, &from_list] {
        let hooks = &answer["config"]["webhooks"];
        assert_eq!(hooks.as_array().map(Vec::len), Some(1), "{answer}");
        assert_eq!(hooks[0]["url"], "http://10.0.0.5/hook", "{answer}");
        assert_eq!(hooks[0]["signed"], true, "{answer}");
        let text = answer.to_string();
        assert!(!text.contains("TENANT_HMAC_KEY"), "{text}");
        assert!(
            !text.contains("hmacKey") && !text.contains("\"hmac\""),
            "{text}"
        );
        assert!(!text.contains("ingress"), "{text}");
    }
}

/// Issue 12: a bad `config.webhooks` item is 400 naming it, and nothing is created anywhere.
#[tokio::test]
async fn an_invalid_config_webhook_item_is_400_naming_it_and_creates_nothing() {
    let app = spawn_app_with(|vars| {
        vars.insert("WAGW_WEBHOOK_ALLOW_PRIVATE".into(), "false".into());
    })
    .await;
    let tenant = app.tenant().await;
    let good = json!({"url": "https://8.8.8.8/hook", "events": ["message"]});
    let many: Vec<Value> = (0..21)
        .map(|i| json!({"url": format!("https://8.8.8.8/hook{i}")}))
        .collect();
    let cases = [
        (
            json!([good.clone(), {"url": "http://10.0.0.5/hook", "events": ["message"]}]),
            "config.webhooks[1].url",
        ),
        (json!(many), "config.webhooks"),
        (json!([{"url": 5}]), "config.webhooks[0].url"),
        (
            json!([{"hmac": "k", "url": "https://8.8.8.8/hook"}]),
            "config.webhooks[0].hmac",
        ),
        (
            json!([{"url": "https://8.8.8.8/hook", "hmac": {"key": "k".repeat(300)}}]),
            "config.webhooks[0].hmac.key",
        ),
        (
            json!([{"webhookUrl": "https://8.8.8.8/hook", "hmacKey": "k".repeat(300)}]),
            "config.webhooks[0].hmacKey",
        ),
    ];
    for (i, (webhooks, named)) in cases.into_iter().enumerate() {
        let res = app
            .tenant_post(
                &tenant,
                "/v1/sessions",
                json!({"name": format!("bad{i}"), "config": {"webhooks": webhooks}}),
            )
            .await;
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, 400, "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.starts_with(named), "{message}");
    }
    assert_eq!(calls_to(&app.sim_log().await, "/v1/"), 0);
    let local = app.rows("sessions").await;
    assert_eq!(local, 0);
    let subscriptions = app.rows("webhook_subscriptions").await;
    assert_eq!(subscriptions, 0);

    // Start of an existing session: a bad item changes nothing there either.
    app.working_session(&tenant, "default").await;
    app.clear_sim_log().await;
    let res = app
        .tenant_post(
            &tenant,
            "/v1/sessions/start",
            json!({"name": "default", "config": {"webhooks": [good, {"url": "http://127.0.0.1/x"}]}}),
        )
        .await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("config.webhooks[1].url"),
        "{body}"
    );
    assert_eq!(calls_to(&app.sim_log().await, "/v1/"), 0);
    let subscriptions = app.rows("webhook_subscriptions").await;
    assert_eq!(subscriptions, 0);
}

/// Issue 12: an event for a session whose webhook came in `config.webhooks` reaches the
/// tenant's receiver, signed with the tenant's key, under the tenant's session name.
#[tokio::test]
async fn an_event_reaches_a_config_webhook_signed() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let receiver = HookReceiver::start().await;
    let res = app
        .tenant_post(
            &tenant,
            "/v1/sessions",
            json!({"name": "bot", "config": {"webhooks": [
                {"url": receiver.url, "events": ["message"], "hmac": {"key": "tenant-secret"}}
            ]}}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let upstream = app.upstream_name(&tenant, "bot").await;
    let res = app
        .sim_post(&format!("/_sim/sessions/{upstream}/scan"), json!({}))
        .await;
    assert!(res.status().is_success());
    let res = app
        .sim_post(
            &format!("/_sim/sessions/{upstream}/incoming"),
            json!({"from": "1234567890", "text": "hello"}),
        )
        .await;
    assert!(res.status().is_success());
    let hits = receiver.clone();
    let arrived = eventually(std::time::Duration::from_secs(15), || {
        let hits = hits.clone();
        async move { !hits.hits.lock().unwrap().is_empty() }
    })
    .await;
    assert!(arrived, "the event arrived");
    let (headers, body) = receiver.hits.lock().unwrap()[0].clone();
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["event"], "message");
    assert_eq!(event["session"], "bot");
    assert_eq!(
        headers["x-webhook-hmac"],
        hmac_sha512_hex("tenant-secret", &body)
    );
}

/// ENGINE.md §2 row 6: stopping with `logout: true` deletes the session upstream, so the
/// gateway forgets it: it is 404 and its name can be used again.
#[tokio::test]
async fn stop_with_logout_forgets_the_session() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    app.working_session(&tenant, "bot").await;
    let res = app
        .tenant_post(
            &tenant,
            "/v1/sessions/stop",
            json!({"name": "bot", "logout": true}),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    let res = app.tenant_get(&tenant, "/v1/sessions/bot").await;
    assert_eq!(res.status(), 404);
    let res = app
        .tenant_post(&tenant, "/v1/sessions", json!({"name": "bot"}))
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    // A plain stop keeps it.
    let res = app
        .tenant_post(&tenant, "/v1/sessions/stop", json!({"name": "bot"}))
        .await;
    assert!(res.status().is_success());
    assert_eq!(
        app.tenant_get(&tenant, "/v1/sessions/bot").await.status(),
        200
    );
}

/// A deleted session takes its relayed subscriptions with it: a new session of the same name
/// does not inherit (nor count toward its 20) the old one's webhooks.
#[tokio::test]
async fn a_recreated_session_does_not_inherit_the_old_ones_webhooks() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let res = app
        .tenant_post(
            &tenant,
            "/v1/sessions",
            json!({"name": "bot", "config": {"webhooks": [{"url": "http://127.0.0.1:9/old"}]}}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let listed: Value = app
        .tenant_get(&tenant, "/v1/sessions/bot/webhooks")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    let res = app
        .client
        .delete(app.url("/v1/sessions/bot"))
        .header("x-api-key", &tenant.key)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    let res = app
        .tenant_post(&tenant, "/v1/sessions", json!({"name": "bot"}))
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let listed: Value = app
        .tenant_get(&tenant, "/v1/sessions/bot/webhooks")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([]), "the old session's webhooks came back");
}

fn hmac_sha512_hex(key: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha512>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

type Hits =
    std::sync::Arc<std::sync::Mutex<Vec<(std::collections::HashMap<String, String>, Vec<u8>)>>>;

/// An HTTP server recording every request (headers and body), on its own thread.
#[derive(Clone)]
struct HookReceiver {
    url: String,
    hits: Hits,
}

impl HookReceiver {
    async fn start() -> Self {
        use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
        let hits = Hits::default();
        let shared = hits.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    let hits = shared.clone();
                    App::new().default_service(web::to(
                        move |req: HttpRequest, body: web::Bytes| {
                            let hits = hits.clone();
                            async move {
                                let headers = req
                                    .headers()
                                    .iter()
                                    .map(|(k, v)| {
                                        (k.to_string(), v.to_str().unwrap_or("").to_owned())
                                    })
                                    .collect();
                                hits.lock().unwrap().push((headers, body.to_vec()));
                                HttpResponse::Ok().finish()
                            }
                        },
                    ))
                })
                .workers(1)
                .bind("127.0.0.1:0")
                .unwrap();
                let port = server.addrs()[0].port();
                let _ = tx.send(port);
                let _ = server.run().await;
            })
        });
        let port = rx.await.unwrap();
        Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            hits,
        }
    }
}

/// M4/A8: a session answer never shows the gateway's own registration (ingress URL, HMAC key).
#[tokio::test]
async fn session_answers_hide_the_gateways_upstream_registrations() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    // An upstream session whose config echoes webhooks the WAHA way.
    let res = upstream_post(
        &app,
        "/v1/sessions",
        json!({"name": "gw_adopted0000000000001", "config": {"webhooks": [{
            "url": "http://gateway.internal/webhooks/ingress/SECRET_TOKEN_123",
            "events": ["message"],
            "hmac": {"key": "SECRET_HMAC_KEY"}
        }]}}),
    )
    .await;
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    let (status, adopted) = app
        .admin(
            reqwest::Method::POST,
            "/admin/v1/sessions/adopt",
            Some(json!({"tenant_id": tenant.id, "upstream_name": "gw_adopted0000000000001", "name": "bot"})),
        )
        .await;
    assert_eq!(status, 201, "{adopted}");
    for path in ["/v1/sessions/bot", "/v1/sessions"] {
        let text = app.tenant_get(&tenant, path).await.text().await.unwrap();
        assert!(!text.contains("SECRET_TOKEN_123"), "{path}: {text}");
        assert!(!text.contains("SECRET_HMAC_KEY"), "{path}: {text}");
        assert!(!text.contains("ingress"), "{path}: {text}");
    }
}

/// M4: a body-less row forwards no body; undeclared query parameters are not forwarded.
#[tokio::test]
async fn bodyless_rows_forward_no_body_and_only_declared_query() {
    let (app, tenant, _) = app_with_session().await;
    let res = app
        .call(
            &tenant,
            reqwest::Method::GET,
            "/v1/sessions/default?evil=1&x-api-key=abc",
        )
        .header("content-type", "application/json")
        .body(r#"{"config":{"proxy":"x"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let log = app.sim_log().await;
    let call = log.last().unwrap();
    assert_eq!(call["body"], "", "{call}");
    assert!(!call["query"].as_str().unwrap().contains("evil"), "{call}");
    assert!(
        !call["query"].as_str().unwrap().contains("x-api-key"),
        "{call}"
    );
}

/// M4: a `session` body field on a path-session row may not name another session.
#[tokio::test]
async fn a_session_body_field_naming_another_session_on_a_path_row_is_400() {
    let (app, tenant, _) = app_with_session().await;
    let res = app
        .tenant_post(
            &tenant,
            "/v1/sessions/default/presence",
            json!({"presence": "online", "session": "gw_someone_else"}),
        )
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(calls_to(&app.sim_log().await, "/v1/"), 0);
}

/// A9/L2: the upstream refusing the organisation's key is the gateway's problem: 502.
#[tokio::test]
async fn an_upstream_401_is_502_for_the_tenant_and_counted() {
    let (app, tenant, _) = app_with_session().await;
    app.sim_fault(
        json!({"path": "/v1/sendText", "status": 401, "message": "Invalid API key", "count": 1}),
    )
    .await;
    let res = app
        .tenant_post(
            &tenant,
            "/v1/sendText",
            json!({"chatId": "1234567890", "text": "hi"}),
        )
        .await;
    assert_eq!(res.status(), 502);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["message"],
        "the upstream refused the gateway's credentials"
    );
    let (status, report) = app
        .admin(reqwest::Method::GET, "/admin/v1/upstream", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(report["upstream_credential_refusals"], 1, "{report}");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("upstream_credential_refusals_total 1"),
        "the refusal is not in /metrics"
    );
}

/// L2: the marketplace's texts about the organisation's plan are replaced.
#[tokio::test]
async fn upstream_texts_about_the_plan_are_neutral() {
    let (app, tenant, _) = app_with_session().await;
    app.sim_fault(json!({"path": "/v1/sendText", "status": 429, "message": "You have exceeded the MONTHLY quota for Requests on your current plan, BASIC. Upgrade your plan at https://rapidapi.com/x", "count": 1}))
        .await;
    let res = app
        .tenant_post(
            &tenant,
            "/v1/sendText",
            json!({"chatId": "1234567890", "text": "hi"}),
        )
        .await;
    let text = res.text().await.unwrap();
    assert!(!text.contains("BASIC"), "{text}");
    assert!(!text.contains("rapidapi"), "{text}");
    assert!(!text.contains("plan"), "{text}");
}

/// Issue 13 item 2 / B1: an engine error without a string message keeps its information.
#[tokio::test]
async fn an_engine_error_object_becomes_the_error_shape_with_a_message() {
    let (app, tenant, upstream) = app_with_session().await;
    app.sim_fault(
        json!({"path": "/v1/sendText", "status": 422, "count": 1, "body": {
            "error": "Session status is not as expected. Try again later or restart the session",
            "session": upstream, "status": "STARTING", "expected": ["WORKING"]
        }}),
    )
    .await;
    let res = app
        .tenant_post(
            &tenant,
            "/v1/sendText",
            json!({"chatId": "1234567890", "text": "hi"}),
        )
        .await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body.as_object().unwrap().len(), 3, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("not as expected"), "{message}");
    assert!(message.contains("STARTING"), "{message}");
    assert!(message.contains("default"), "{message}");
    assert!(!body.to_string().contains(&upstream), "{body}");
}

/// Once the upstream received a send, a broken answer is recorded: a retry replays, never resends.
#[tokio::test]
async fn a_send_whose_answer_breaks_after_receipt_is_never_sent_twice() {
    let (app, tenant, _) = app_with_session().await;
    app.sim_fault(json!({"path": "/v1/sendText", "garble": true, "count": 1}))
        .await;
    let send = || {
        app.call(&tenant, reqwest::Method::POST, "/v1/sendText")
            .header("idempotency-key", "garbled-1")
            .json(&json!({"chatId": "1234567890", "text": "hi"}))
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 502);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["statusCode"], 502);
    let second = send().await.unwrap();
    assert_eq!(second.status(), 502);
    assert_eq!(second.json::<Value>().await.unwrap(), first);
    assert_eq!(calls_to(&app.sim_log().await, "/v1/sendText"), 1);
}

/// L8: an adopted session called `default`: a message whose text is "default" stays as sent.
#[tokio::test]
async fn renaming_touches_only_session_fields() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let res = upstream_post(&app, "/v1/sessions", json!({"name": "default"})).await;
    assert!(res.status().is_success());
    app.sim_post("/_sim/sessions/default/scan", json!({})).await;
    let (status, adopted) = app
        .admin(
            reqwest::Method::POST,
            "/admin/v1/sessions/adopt",
            Some(json!({"tenant_id": tenant.id, "upstream_name": "default", "name": "sales"})),
        )
        .await;
    assert_eq!(status, 201, "{adopted}");
    let res = app
        .tenant_post(
            &tenant,
            "/v1/sendText",
            json!({"session": "sales", "chatId": "1234567890", "text": "default"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["body"], "default", "{body}");
}
