//! Hostile callers: a tenant attacking the organisation or another tenant through the `/v1`
//! proxy (security review H2, H3, M3, M4, L2, L3, L8; conformance A8, A9, B1). See mod.rs.

use crate::helpers::Receiver;
use crate::helpers::*;
use serde_json::{json, Value};
use wa_gateway::sim::webhook_signature;

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
    app.raw(method, path, &[("x-api-key", key)]).await.0
}

/// A call's status and body: its JSON, or its text when it is not JSON.
async fn answered(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn post(app: &TestApp, tenant: &TestTenant, path: &str, body: Value) -> (u16, Value) {
    answered(app.tenant_post(tenant, path, body).await).await
}

async fn get(app: &TestApp, tenant: &TestTenant, path: &str) -> (u16, Value) {
    answered(app.tenant_get(tenant, path).await).await
}

/// The answer's `message`, which must contain `named`.
fn assert_names(body: &Value, named: &str) {
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(named), "`{named}` in {body}");
}

fn hi() -> Value {
    json!({"chatId": "1234567890", "text": "hi"})
}

/// Creates `upstream` on the simulator with the organisation's key, and has the admin give it
/// to `tenant` as `name`.
async fn adopted(app: &TestApp, tenant: &TestTenant, upstream: Value, name: &str) {
    let res = upstream_post(app, "/v1/sessions", upstream.clone()).await;
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    let adopt = json!({"tenant_id": tenant.id, "upstream_name": upstream["name"], "name": name});
    let path = "/admin/v1/sessions/adopt";
    let (status, adopted) = app.admin(reqwest::Method::POST, path, Some(adopt)).await;
    assert_eq!(status, 201, "{adopted}");
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
    let proxied = json!({"name": "bot", "config": {"proxy": {"server": "10.0.0.5:3128"}}});
    let (status, body) = post(&app, &tenant, "/v1/sessions", proxied).await;
    assert_eq!(status, 400);
    assert_names(&body, "config.proxy");
    assert_eq!(calls_to(&app.sim_log().await, "/v1/"), 0);
    assert_eq!(app.rows("sessions").await, 0);
}

/// M4 / issue 12: `config.webhooks` becomes the tenant's relayed subscriptions: the tenant's
/// URL and key never reach the upstream, the subscription is listed with the relay's own, and
/// session answers show it without its key.
#[tokio::test]
async fn config_webhooks_on_create_never_reach_the_upstream() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let hook = json!({"url": "http://10.0.0.5/hook", "events": ["message"],
                      "hmac": {"key": "TENANT_HMAC_KEY"}});
    let bot = json!({"name": "bot", "config": {"metadata": {"team": "a"}, "webhooks": [hook]}});
    let (status, created) = post(&app, &tenant, "/v1/sessions", bot).await;
    assert_eq!(status, 201, "{created}");
    let log = app.sim_log().await;
    let sent = serde_json::to_string(&log).unwrap();
    assert!(!sent.contains("10.0.0.5"), "{sent}");
    assert!(!sent.contains("TENANT_HMAC_KEY"), "{sent}");
    // Only the gateway's ingress is registered upstream.
    let upstream = app.upstream_name(&tenant, "bot").await;
    let sim_session = format!("{}/_sim/sessions/{upstream}", app.sim().url());
    let sim_session = answered(app.client.get(sim_session).send().await.unwrap()).await;
    assert!(
        !sim_session.1.to_string().contains("10.0.0.5"),
        "{sim_session:?}"
    );

    let (_, listed) = get(&app, &tenant, "/v1/sessions/bot/webhooks").await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["webhookUrl"], "http://10.0.0.5/hook");
    assert_eq!(listed[0]["signed"], true);

    let (_, got) = get(&app, &tenant, "/v1/sessions/bot").await;
    let (_, all) = get(&app, &tenant, "/v1/sessions").await;
    let mut sessions = all.as_array().unwrap().iter();
    let from_list = sessions.find(|s| s["name"] == "bot").unwrap().clone();
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

/// A gateway refusing webhooks to private addresses, and a tenant.
async fn app_public_webhooks_only() -> (TestApp, TestTenant) {
    let app = spawn_app_with(|vars| {
        vars.insert("WAGW_WEBHOOK_ALLOW_PRIVATE".into(), "false".into());
    })
    .await;
    let tenant = app.tenant().await;
    (app, tenant)
}

/// Asserts a 400 whose message begins by naming `named`.
fn assert_refused_naming(status: u16, body: &Value, named: &str) {
    assert_eq!(status, 400, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.starts_with(named), "`{named}` first in {message}");
}

/// Issue 12: a bad `config.webhooks` item is 400 naming it, and nothing is created anywhere.
#[tokio::test]
async fn an_invalid_config_webhook_item_is_400_naming_it_and_creates_nothing() {
    let (app, tenant) = app_public_webhooks_only().await;
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
        let bad = json!({"name": format!("bad{i}"), "config": {"webhooks": webhooks}});
        let (status, body) = post(&app, &tenant, "/v1/sessions", bad).await;
        assert_refused_naming(status, &body, named);
    }
    assert_eq!(calls_to(&app.sim_log().await, "/v1/"), 0);
    assert_eq!(app.rows("sessions").await, 0);
    assert_eq!(app.rows("webhook_subscriptions").await, 0);
}

/// Issue 12: starting an existing session with a bad `config.webhooks` item changes nothing.
#[tokio::test]
async fn an_invalid_config_webhook_item_on_start_is_400_and_changes_nothing() {
    let (app, tenant) = app_public_webhooks_only().await;
    app.working_session(&tenant, "default").await;
    app.clear_sim_log().await;
    let good = json!({"url": "https://8.8.8.8/hook", "events": ["message"]});
    let webhooks = json!([good, {"url": "http://127.0.0.1/x"}]);
    let start = json!({"name": "default", "config": {"webhooks": webhooks}});
    let (status, body) = post(&app, &tenant, "/v1/sessions/start", start).await;
    assert_refused_naming(status, &body, "config.webhooks[1].url");
    assert_eq!(calls_to(&app.sim_log().await, "/v1/"), 0);
    assert_eq!(app.rows("webhook_subscriptions").await, 0);
}

/// Issue 12: an event for a session whose webhook came in `config.webhooks` reaches the
/// tenant's receiver, signed with the tenant's key, under the tenant's session name.
#[tokio::test]
async fn an_event_reaches_a_config_webhook_signed() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let receiver = Receiver::answering(200).await;
    let hook =
        json!({"url": receiver.url, "events": ["message"], "hmac": {"key": "tenant-secret"}});
    let bot = json!({"name": "bot", "config": {"webhooks": [hook]}});
    let (status, created) = post(&app, &tenant, "/v1/sessions", bot).await;
    assert_eq!(status, 201, "{created}");
    let upstream = app.upstream_name(&tenant, "bot").await;
    for (action, body) in [
        ("scan", json!({})),
        ("incoming", json!({"from": "1234567890", "text": "hello"})),
    ] {
        let res = app
            .sim_post(&format!("/_sim/sessions/{upstream}/{action}"), body)
            .await;
        assert!(res.status().is_success(), "{action}: {}", res.status());
    }
    let hits = receiver
        .wait_for(1, std::time::Duration::from_secs(15))
        .await;
    let event = hits[0].json();
    assert_eq!(event["event"], "message");
    assert_eq!(event["session"], "bot");
    let signature = webhook_signature("tenant-secret", &hits[0].body);
    assert_eq!(hits[0].header("x-webhook-hmac"), signature);
    receiver.stop().await;
}

/// ENGINE.md §2 row 6: stopping with `logout: true` deletes the session upstream, so the
/// gateway forgets it: it is 404 and its name can be used again.
#[tokio::test]
async fn stop_with_logout_forgets_the_session() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    app.working_session(&tenant, "bot").await;
    let logout = json!({"name": "bot", "logout": true});
    let (status, body) = post(&app, &tenant, "/v1/sessions/stop", logout).await;
    assert!((200..300).contains(&status), "{status} {body}");
    assert_eq!(get(&app, &tenant, "/v1/sessions/bot").await.0, 404);
    let (status, body) = post(&app, &tenant, "/v1/sessions", json!({"name": "bot"})).await;
    assert_eq!(status, 201, "{body}");
    // A plain stop keeps it.
    let (status, body) = post(&app, &tenant, "/v1/sessions/stop", json!({"name": "bot"})).await;
    assert!((200..300).contains(&status), "{status} {body}");
    assert_eq!(get(&app, &tenant, "/v1/sessions/bot").await.0, 200);
}

/// A deleted session takes its relayed subscriptions with it: a new session of the same name
/// does not inherit (nor count toward its 20) the old one's webhooks.
#[tokio::test]
async fn a_recreated_session_does_not_inherit_the_old_ones_webhooks() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let old = json!({"name": "bot", "config": {"webhooks": [{"url": "http://127.0.0.1:9/old"}]}});
    let (status, body) = post(&app, &tenant, "/v1/sessions", old).await;
    assert_eq!(status, 201, "{body}");
    let (_, listed) = get(&app, &tenant, "/v1/sessions/bot/webhooks").await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    let delete = app.call(&tenant, reqwest::Method::DELETE, "/v1/sessions/bot");
    let (status, body) = answered(delete.send().await.unwrap()).await;
    assert!((200..300).contains(&status), "{status} {body}");
    let (status, body) = post(&app, &tenant, "/v1/sessions", json!({"name": "bot"})).await;
    assert_eq!(status, 201, "{body}");
    let (_, listed) = get(&app, &tenant, "/v1/sessions/bot/webhooks").await;
    assert_eq!(listed, json!([]), "the old session's webhooks came back");
}

/// M4/A8: a session answer never shows the gateway's own registration (ingress URL, HMAC key).
#[tokio::test]
async fn session_answers_hide_the_gateways_upstream_registrations() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    // An upstream session whose config echoes webhooks the WAHA way.
    let upstream = json!({"name": "gw_adopted0000000000001", "config": {"webhooks": [{
        "url": "http://gateway.internal/webhooks/ingress/SECRET_TOKEN_123",
        "events": ["message"],
        "hmac": {"key": "SECRET_HMAC_KEY"}
    }]}});
    adopted(&app, &tenant, upstream, "bot").await;
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
    let res = app.tenant_post(&tenant, "/v1/sendText", hi()).await;
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
    let res = app.tenant_post(&tenant, "/v1/sendText", hi()).await;
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
    let res = app.tenant_post(&tenant, "/v1/sendText", hi()).await;
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
    adopted(&app, &tenant, json!({"name": "default"}), "sales").await;
    let scan = app.sim_post("/_sim/sessions/default/scan", json!({})).await;
    assert!(scan.status().is_success(), "scan: {}", scan.status());
    let text = json!({"session": "sales", "chatId": "1234567890", "text": "default"});
    let (status, body) = post(&app, &tenant, "/v1/sendText", text).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["body"], "default", "{body}");
}
