//! Every row of the route table forwarded to the simulator exactly: method, path, query and
//! body with the session renamed, the organisation's key and none of the tenant's credentials;
//! the answer renamed back. Tenants cannot reach each other's sessions, and see only their own.

use crate::helpers::{spawn_app, TestApp, TestTenant, UPSTREAM_KEY};
use reqwest::Method;
use serde_json::{json, Map, Value};
use wa_gateway::http::routes::endpoints::{self, Endpoint, Handling, SessionIn};

pub const GROUP_ID: &str = "120363000000000001@g.us";
pub const CHANNEL_ID: &str = "120363000000000001@newsletter";

/// A request built generically from a row: its examples, with `session` as the session name.
#[derive(Debug, Clone)]
pub struct Built {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Option<Value>,
}

fn example(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or_else(|e| panic!("example {raw}: {e}"))
}

pub fn build(row: &Endpoint, session: &str) -> Built {
    let path = row
        .path
        .replace("{session}", session)
        .replace("{groupId}", GROUP_ID)
        .replace("{channelId}", CHANNEL_ID);
    let mut query: Vec<(String, String)> = row
        .query
        .iter()
        .map(|p| {
            let value = match example(p.example) {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (p.name.to_owned(), value)
        })
        .collect();
    if let SessionIn::Query(param) = row.session {
        query.retain(|(k, _)| k != param);
        query.push((param.to_owned(), session.to_owned()));
    }
    let body = row.body.map(|fields| {
        let mut map = Map::new();
        for field in fields {
            map.insert(field.name.to_owned(), example(field.example));
        }
        if let SessionIn::Body(field) = row.session {
            map.insert(field.to_owned(), json!(session));
        }
        Value::Object(map)
    });
    Built {
        method: Method::from_bytes(row.method.as_str().as_bytes()).unwrap(),
        path,
        query,
        body,
    }
}

/// The tenant's credential in one of the three headers the hosted API's clients use.
#[derive(Debug, Clone, Copy)]
pub enum Credential {
    Bearer,
    ApiKey,
    RapidApiKey,
}

pub fn send(
    app: &TestApp,
    tenant: &TestTenant,
    built: &Built,
    credential: Credential,
) -> reqwest::RequestBuilder {
    let mut req = app
        .client
        .request(built.method.clone(), app.url(&built.path));
    if !built.query.is_empty() {
        req = req.query(&built.query);
    }
    req = match credential {
        Credential::Bearer => req.bearer_auth(&tenant.key),
        Credential::ApiKey => req.header("x-api-key", &tenant.key),
        Credential::RapidApiKey => req
            .header("x-rapidapi-key", &tenant.key)
            .header("x-rapidapi-host", wa_gateway::sim::DEFAULT_HOST),
    };
    if let Some(body) = &built.body {
        req = req.json(body);
    }
    req
}

/// Rows the gateway forwards (the webhook rows are the relay's).
pub fn forwarded_rows() -> Vec<&'static Endpoint> {
    endpoints::all()
        .iter()
        .filter(|e| e.handling != Handling::WebhookRelay)
        .collect()
}

fn sorted_pairs(query: &str) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    pairs.sort();
    pairs
}

#[tokio::test]
async fn every_row_reaches_the_upstream_exactly_with_the_session_renamed_and_only_the_organisations_key(
) {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let session = "bot-1";
    let mut upstream = app.working_session(&tenant, session).await;

    // Calls that end the session go last, so the others meet a WORKING session: stop, then
    // start (the engine refuses to start a running session), then logout, which deletes it
    // (ENGINE.md §2 row 9), then delete, on the session made again.
    let mut rows = forwarded_rows();
    let order = |e: &Endpoint| match e.operation_id {
        "stopSession" => 1,
        "startSession" => 2,
        "logoutSession" => 3,
        "deleteSession" => 4,
        _ => 0,
    };
    rows.sort_by_key(|e| order(e));
    assert!(
        rows.len() >= 40,
        "the table covers the seed: {}",
        rows.len()
    );

    let credentials = [
        Credential::Bearer,
        Credential::ApiKey,
        Credential::RapidApiKey,
    ];
    for (i, row) in rows.into_iter().enumerate() {
        let what = format!("{} {}", row.method, row.path);
        let name = if row.handling == Handling::CreateSession {
            "fresh"
        } else {
            session
        };
        if row.operation_id == "deleteSession" {
            upstream = app.working_session(&tenant, session).await;
        }
        let built = build(row, name);
        app.clear_sim_log().await;
        let request_id = format!("fwd-test-{i}");
        let res = send(&app, &tenant, &built, credentials[i % 3])
            .header("x-request-id", &request_id)
            .header("connection", "keep-alive, x-hop-secret")
            .header("keep-alive", "timeout=5")
            .header("x-hop-secret", "hop")
            .header("proxy-authorization", "Basic Zm9vOmJhcg==")
            .header("te", "trailers")
            .header("cookie", "sid=tenant-cookie")
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let answer = res.bytes().await.unwrap();

        let upstream_name = if row.handling == Handling::CreateSession {
            app.upstream_name(&tenant, name).await
        } else {
            upstream.clone()
        };
        let log = crate::helpers::without_registrations(app.sim_log().await);
        assert_eq!(log.len(), 1, "{what}: one upstream call: {log:#?}");
        let call = &log[0];

        assert_eq!(call["method"], row.method.as_str(), "{what}");
        assert_forwarded_as_built(&what, call, &build(row, &upstream_name));
        assert_only_the_organisations_credentials(&what, call, &request_id, &tenant.key);
        let answered = Answered {
            status,
            body: &answer,
            upstream_name: &upstream_name,
            name,
        };
        assert_answered_renamed_back(&what, row, call, &answered, session);
    }
}

/// The call the upstream got is `expected`: method, path, query and body, session renamed.
fn assert_forwarded_as_built(what: &str, call: &Value, expected: &Built) {
    assert_eq!(call["path"], expected.path, "{what}");
    let expected_query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&expected.query)
        .finish();
    assert_eq!(
        sorted_pairs(call["query"].as_str().unwrap()),
        sorted_pairs(&expected_query),
        "{what}"
    );
    match &expected.body {
        Some(body) => {
            let sent: Value = serde_json::from_str(call["body"].as_str().unwrap())
                .unwrap_or_else(|e| panic!("{what}: the upstream got no JSON: {e}"));
            assert_eq!(&sent, body, "{what}");
            let ct = call["headers"]["content-type"].as_str().unwrap_or_default();
            assert!(ct.starts_with("application/json"), "{what}: {ct}");
        }
        None => assert_eq!(call["body"], "", "{what}"),
    }
}

/// The organisation's key and host reach the upstream; nothing of the tenant's credentials
/// or hop-by-hop headers does.
fn assert_only_the_organisations_credentials(
    what: &str,
    call: &Value,
    request_id: &str,
    key: &str,
) {
    // The organisation's key and host; nothing of the tenant's credentials or hop headers.
    let headers = call["headers"].as_object().unwrap();
    assert_eq!(headers["x-rapidapi-key"], UPSTREAM_KEY, "{what}");
    assert_eq!(
        headers["x-rapidapi-host"],
        wa_gateway::sim::DEFAULT_HOST,
        "{what}"
    );
    assert_eq!(headers["x-request-id"], request_id, "{what}");
    for name in [
        "authorization",
        "x-api-key",
        "keep-alive",
        "x-hop-secret",
        "proxy-authorization",
        "te",
        "cookie",
    ] {
        assert!(
            !headers.contains_key(name),
            "{what}: {name} reached the upstream"
        );
    }
    if let Some(connection) = headers.get("connection") {
        assert!(
            !connection.as_str().unwrap_or_default().contains("x-hop"),
            "{what}: {connection}"
        );
    }
    for (name, value) in headers {
        assert!(
            !value.as_str().unwrap_or_default().contains(key),
            "{what}: the tenant's key reached the upstream in {name}"
        );
    }
}

/// What the gateway answered a forwarded call.
struct Answered<'a> {
    status: u16,
    body: &'a [u8],
    upstream_name: &'a str,
    /// The tenant's name for the session the call named.
    name: &'a str,
}

/// The upstream's answer passes through with the session renamed back.
fn assert_answered_renamed_back(
    what: &str,
    row: &Endpoint,
    call: &Value,
    answered: &Answered<'_>,
    session: &str,
) {
    let Answered {
        status,
        body: answer,
        upstream_name,
        name,
    } = *answered;
    let answer_text = String::from_utf8_lossy(answer);
    // The answer passes through with the session renamed back.
    if let Some(upstream_status) = call["status"].as_u64() {
        assert_eq!(u64::from(status), upstream_status, "{what}: {answer_text}");
    }
    assert!(
        !answer_text.contains(upstream_name),
        "{what}: the upstream name leaked: {answer_text}"
    );
    assert!(!answer_text.contains(UPSTREAM_KEY), "{what}");
    if row.tag == endpoints::Tag::Messages {
        assert_eq!(status, row.success, "{what}: {answer_text}");
    }
    if matches!(
        row.operation_id,
        "getSession" | "createSession" | "startSession"
    ) {
        assert_eq!(status, row.success, "{what}: {answer_text}");
        let info: Value = serde_json::from_slice(answer).unwrap();
        assert_eq!(info["name"], name, "{what}: {info}");
    }
    if row.handling == Handling::ListSessions {
        let list: Value = serde_json::from_slice(answer).unwrap();
        assert_eq!(list.as_array().map(Vec::len), Some(1), "{what}: {list}");
        assert_eq!(list[0]["name"], session);
    }
}

#[tokio::test]
async fn the_qr_code_is_streamed_as_a_png_and_as_json_on_request() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let res = app
        .tenant_post(&tenant, "/v1/sessions", json!({"name": "phone"}))
        .await;
    assert_eq!(res.status(), 201);
    let res = app.tenant_get(&tenant, "/v1/phone/auth/qr").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/png");
    let png = res.bytes().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");

    let res = app
        .call(&tenant, Method::GET, "/v1/phone/auth/qr")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["mimetype"], "image/png");
    assert!(body["data"].as_str().is_some_and(|d| !d.is_empty()));
}

#[tokio::test]
async fn another_tenants_session_is_404_like_a_missing_one_on_every_row_and_never_forwarded() {
    let app = spawn_app().await;
    let owner = app.tenant().await;
    let intruder = app.tenant().await;
    let upstream = app.working_session(&owner, "alpha").await;

    let rows: Vec<_> = forwarded_rows()
        .into_iter()
        .filter(|e| e.session != SessionIn::Absent && e.handling != Handling::CreateSession)
        .collect();
    assert!(rows.len() >= 30, "{}", rows.len());
    app.clear_sim_log().await;
    for row in rows {
        let what = format!("{} {}", row.method, row.path);
        let missing = send(
            &app,
            &intruder,
            &build(row, "zz-missing"),
            Credential::ApiKey,
        )
        .send()
        .await
        .unwrap();
        assert_eq!(missing.status(), 404, "{what}");
        let missing = missing.text().await.unwrap();
        for name in ["alpha", upstream.as_str()] {
            let res = send(&app, &intruder, &build(row, name), Credential::ApiKey)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 404, "{what} naming {name}");
            assert_eq!(
                res.text().await.unwrap(),
                missing.replace("zz-missing", name),
                "{what}: the same answer as for a missing session"
            );
        }
    }
    assert_eq!(app.sim_log().await, Vec::<Value>::new(), "no upstream call");
}

#[tokio::test]
async fn a_key_limited_to_one_session_cannot_use_its_tenants_other_sessions() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    app.working_session(&tenant, "x").await;
    app.working_session(&tenant, "y").await;
    let (status, key) = app
        .admin(
            Method::POST,
            &format!("/admin/v1/tenants/{}/keys", tenant.id),
            Some(json!({"name": "only-x", "scopes": ["*"], "sessions": ["x"]})),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let limited = TestTenant {
        key: key["key"].as_str().unwrap().to_owned(),
        ..tenant.clone()
    };
    app.clear_sim_log().await;
    let send_text =
        |session: &str| json!({"session": session, "chatId": "1234567890", "text": "hi"});
    let res = app
        .tenant_post(&limited, "/v1/sendText", send_text("y"))
        .await;
    assert_eq!(res.status(), 404);
    let res = app.tenant_get(&limited, "/v1/sessions/y").await;
    assert_eq!(res.status(), 404);
    assert!(app.sim_log().await.is_empty());
    let res = app
        .tenant_post(&limited, "/v1/sendText", send_text("x"))
        .await;
    assert_eq!(res.status(), 201);
    // Its list shows only what it may use; the tenant's full key sees both.
    let names = |list: Value| -> Vec<String> {
        let mut names: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    let list: Value = app
        .tenant_get(&limited, "/v1/sessions")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(names(list), ["x"]);
    let list: Value = app
        .tenant_get(&tenant, "/v1/sessions")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(names(list), ["x", "y"]);
}

/// Two tenants with a session `default` each (A's WORKING), and a session `rogue` made behind
/// the gateway's back, directly on the upstream.
struct TwoTenants {
    app: TestApp,
    a: TestTenant,
    b: TestTenant,
    a_default: String,
    b_default: String,
}

async fn two_tenants_and_a_rogue() -> TwoTenants {
    let app = spawn_app().await;
    let a = app.tenant().await;
    let b = app.tenant().await;
    let a_default = app.working_session(&a, "default").await;
    let res = app
        .tenant_post(&b, "/v1/sessions", json!({"name": "default"}))
        .await;
    assert_eq!(res.status(), 201, "two tenants can both have `default`");
    let b_default = app.upstream_name(&b, "default").await;
    assert_ne!(a_default, b_default);
    let res = app
        .client
        .post(format!("{}/v1/sessions", app.sim().url()))
        .header("x-rapidapi-key", UPSTREAM_KEY)
        .header("x-rapidapi-host", wa_gateway::sim::DEFAULT_HOST)
        .json(&json!({"name": "rogue"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    TwoTenants {
        app,
        a,
        b,
        a_default,
        b_default,
    }
}

async fn list_of(app: &TestApp, tenant: &TestTenant) -> Value {
    let listed = app.get_as(tenant, "/v1/sessions").await;
    assert_eq!(listed.status, 200);
    listed.json
}

#[tokio::test]
async fn tenants_list_only_their_own_sessions_with_the_live_status() {
    let TwoTenants { app, a, b, .. } = two_tenants_and_a_rogue().await;
    let a_list = list_of(&app, &a).await;
    assert_eq!(a_list.as_array().unwrap().len(), 1, "{a_list}");
    assert_eq!(a_list[0]["name"], "default");
    assert_eq!(a_list[0]["status"], "WORKING", "live status");
    let b_list = list_of(&app, &b).await;
    assert_eq!(b_list.as_array().unwrap().len(), 1, "{b_list}");
    assert_eq!(b_list[0]["name"], "default");
    assert_ne!(b_list[0]["status"], "WORKING");
    for list in [&a_list, &b_list] {
        let text = list.to_string();
        assert!(!text.contains("gw_") && !text.contains("rogue"), "{text}");
    }
}

#[tokio::test]
async fn admins_see_every_session_owned_or_not() {
    let TwoTenants {
        app,
        a,
        b,
        a_default,
        b_default,
    } = two_tenants_and_a_rogue().await;
    let (status, all) = app.admin(Method::GET, "/admin/v1/sessions", None).await;
    assert_eq!(status, 200);
    let all = all.as_array().unwrap().clone();
    assert_eq!(all.len(), 3, "{all:?}");
    let find = |name: &str| {
        all.iter()
            .find(|s| s["upstream_name"] == name)
            .unwrap_or_else(|| panic!("{name} listed"))
            .clone()
    };
    assert_eq!(find(&a_default)["tenant_id"], a.id.as_str());
    assert_eq!(find(&a_default)["name"], "default");
    assert_eq!(find(&a_default)["status"], "WORKING");
    assert_eq!(find(&b_default)["tenant_id"], b.id.as_str());
    assert_eq!(find("rogue")["tenant_id"], Value::Null);
}

/// The upstream lists STOPPED sessions only when asked (`all=true`, ENGINE.md §2 row 1): an
/// admin must still see them, owned or not, with their status (a stopped phone is what an admin
/// most often adopts or cleans up).
#[tokio::test]
async fn admins_see_stopped_sessions_too() {
    let TwoTenants { app, b_default, .. } = two_tenants_and_a_rogue().await;
    for name in ["rogue", b_default.as_str()] {
        let res = app
            .client
            .post(format!("{}/v1/sessions/stop", app.sim().url()))
            .header("x-rapidapi-key", UPSTREAM_KEY)
            .header("x-rapidapi-host", wa_gateway::sim::DEFAULT_HOST)
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{name}: {}", res.status());
    }
    let (status, all) = app.admin(Method::GET, "/admin/v1/sessions", None).await;
    assert_eq!(status, 200);
    let all = all.as_array().unwrap().clone();
    assert_eq!(all.len(), 3, "{all:?}");
    for name in ["rogue", b_default.as_str()] {
        let listed = all.iter().find(|s| s["upstream_name"] == name);
        assert_eq!(
            listed.map(|s| s["status"].clone()),
            Some(json!("STOPPED")),
            "{name} in {all:?}"
        );
    }
}

#[tokio::test]
async fn an_admin_gives_a_session_made_upstream_to_a_tenant_usable_at_once() {
    let TwoTenants { app, a, b, .. } = two_tenants_and_a_rogue().await;
    // Adoption: the rogue session becomes B's `phone2`.
    let (status, adopted) = app
        .admin(
            Method::POST,
            "/admin/v1/sessions/adopt",
            Some(json!({"upstream_name": "rogue", "tenant_id": b.id, "name": "phone2"})),
        )
        .await;
    assert_eq!(status, 201, "{adopted}");
    let info = app.get_as(&b, "/v1/sessions/phone2").await;
    assert_eq!(info.status, 200);
    assert_eq!(info.json["name"], "phone2");
    let names: Vec<Value> = list_of(&app, &b)
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].clone())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&json!("phone2")) && names.contains(&json!("default")));
    assert_eq!(app.get_as(&a, "/v1/sessions/phone2").await.status, 404);
}

#[tokio::test]
async fn an_admin_deletes_a_tenants_session_upstream_and_for_the_tenant() {
    let TwoTenants {
        app, a, a_default, ..
    } = two_tenants_and_a_rogue().await;
    let (status, _) = app
        .admin(
            Method::DELETE,
            &format!("/admin/v1/sessions/{a_default}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(app.get_as(&a, "/v1/sessions/default").await.status, 404);
    assert_eq!(list_of(&app, &a).await, json!([]));
    let (_, all) = app.admin(Method::GET, "/admin/v1/sessions", None).await;
    assert!(!all.to_string().contains(&a_default));
}

/// Deleting a tenant deletes its upstream sessions; one the upstream failed to delete stays
/// recorded and is retried in the background (with backoff) until it is gone.
#[tokio::test]
async fn a_failed_upstream_session_deletion_is_retried_in_the_background() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let upstream = app.working_session(&tenant, "default").await;
    let path = format!("/v1/sessions/{upstream}");
    app.sim_fault(json!({"path": path, "method": "DELETE", "status": 500, "count": 1}))
        .await;

    let (status, deleted) = app
        .admin(
            Method::DELETE,
            &format!("/admin/v1/tenants/{}", tenant.id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["upstream_sessions_deleted"], 0, "{deleted}");
    assert_eq!(deleted["upstream_sessions_pending"], 1, "{deleted}");

    let recorded = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM upstream_session_deletions")
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    let retried = crate::helpers::eventually(std::time::Duration::from_secs(15), || async {
        recorded().await == 0
    })
    .await;
    assert!(retried, "the deletion was retried and recorded as done");
    let deletes = app
        .sim_log()
        .await
        .into_iter()
        .filter(|e| e["method"] == "DELETE" && e["path"] == path.as_str())
        .count();
    assert_eq!(deletes, 2, "one failed attempt, one that succeeded");
}
