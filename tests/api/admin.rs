//! The admin API: tokens, admins, tenants, keys at rest, throttling and the audit log.

use crate::helpers::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Admin API calls made with one admin's token (one login, so one `admin.login` audited).
pub struct Admin<'a> {
    pub app: &'a TestApp,
    pub token: String,
}

impl<'a> Admin<'a> {
    /// The bootstrap admin, logged in.
    pub async fn root(app: &'a TestApp) -> Self {
        let token = admin_token(&app.client, &app.address).await;
        Self { app, token }
    }

    /// `username` logged in with `password`.
    pub async fn login(app: &'a TestApp, username: &str, password: &str) -> Self {
        let res = login(&app.client, &app.address, username, password).await;
        assert_eq!(res.status(), 200, "{username} logs in");
        let body: Value = res.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap().to_owned();
        Self { app, token }
    }

    /// The call's status and JSON body (`Null` when there is none).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let (client, base) = (&self.app.client, &self.app.address);
        let res = admin_call(client, base, &self.token, method, path, body).await;
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> u16 {
        self.call(Method::DELETE, path, None).await.0
    }

    /// Whether the token is refused now or within a second (every replica learns of a change
    /// within one).
    pub async fn refused_within_a_second(&self) -> bool {
        eventually(Duration::from_secs(1), || async {
            self.get("/admin/v1/tenants").await.0 == 401
        })
        .await
    }
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn hs(alg: jsonwebtoken::Algorithm, secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn assert_refused(app: &TestApp, token: Option<&str>, what: &str) {
    let mut req = app.client.get(app.url("/admin/v1/tenants"));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 401, "{what}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["statusCode"], 401, "{what}");
    assert_eq!(body["error"], "Unauthorized", "{what}");
}

/// Tokens that look like the admin's but are not: each with what is wrong with it.
fn forged_tokens(good: &str, admin_id: &str) -> Vec<(String, &'static str)> {
    let now = chrono::Utc::now().timestamp();
    // Every claim a real token carries, so each refusal is about its stated reason.
    let claims = |iat: i64, exp: i64| {
        json!({"sub": admin_id, "iat": iat, "exp": exp, "jti": uuid::Uuid::new_v4(),
               "iss": "wa-gateway", "aud": "wa-gateway-admin", "ver": 0})
    };
    let valid = claims(now, now + 600);
    let hs256 = jsonwebtoken::Algorithm::HS256;
    let other_secret = "another-secret-another-secret-0000";
    // Tampered: a valid token whose claims were swapped for others, signature kept.
    let parts: Vec<&str> = good.split('.').collect();
    let other_claims = b64(&claims(now, now + 999_999));
    let none = b64(&json!({"alg": "none", "typ": "JWT"}));
    let rs256 = b64(&json!({"alg": "RS256", "typ": "JWT"}));
    let rs256_signature = URL_SAFE_NO_PAD.encode([7u8; 256]);
    vec![
        ("not-a-jwt".to_owned(), "garbage"),
        (
            hs(hs256, TEST_JWT_SECRET, &claims(now - 7200, now - 3600)),
            "expired",
        ),
        (
            hs(hs256, other_secret, &valid),
            "signed with another secret",
        ),
        (
            hs(jsonwebtoken::Algorithm::HS512, TEST_JWT_SECRET, &valid),
            "another HMAC algorithm",
        ),
        (
            format!("{}.{other_claims}.{}", parts[0], parts[2]),
            "tampered",
        ),
        (format!("{none}.{}.", b64(&valid)), "alg none"),
        (
            format!("{rs256}.{}.{rs256_signature}", b64(&valid)),
            "RS256",
        ),
    ]
}

#[tokio::test]
async fn admin_routes_refuse_every_bad_token() {
    let app = app().await;
    let root = Admin::root(&app).await;
    // The good token works, so the refusals below are about the token alone.
    assert_eq!(root.get("/admin/v1/tenants").await.0, 200);
    let (_, admins) = root.get("/admin/v1/admins").await;
    let admin_id = admins[0]["id"].as_str().unwrap();

    assert_refused(&app, None, "no token").await;
    for (token, what) in forged_tokens(&root.token, admin_id) {
        assert_refused(&app, Some(&token), what).await;
    }
    // A tenant key is not an admin token.
    let tenant = create_tenant(&app.client, &app.address, &root.token, "acme").await;
    let key = create_key(&app.client, &app.address, &root.token, &tenant, &["*"]).await;
    assert_refused(&app, Some(key["key"].as_str().unwrap()), "tenant key").await;
}

const ALICE: &str = "alice-long-password";

/// Root creates alice; answers her as created.
async fn with_alice(root: &Admin<'_>) -> Value {
    let alice = json!({"username": "alice", "password": ALICE});
    let (status, created) = root.post("/admin/v1/admins", alice).await;
    assert_eq!(status, 201, "{created}");
    created
}

#[tokio::test]
async fn admins_are_created_once_with_a_long_password_and_listed() {
    let app = app().await;
    let root = Admin::root(&app).await;
    let short = json!({"username": "alice", "password": "short"});
    assert_eq!(root.post("/admin/v1/admins", short).await.0, 422);
    with_alice(&root).await;
    let again = json!({"username": "alice", "password": ALICE});
    assert_eq!(root.post("/admin/v1/admins", again).await.0, 409);

    let (_, list) = root.get("/admin/v1/admins").await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["alice", ADMIN_USER]);
}

/// An admin changes her own password: the old one and the token the change was made with stop
/// working, the new one works.
#[tokio::test]
async fn a_password_change_ends_the_old_password_and_its_token() {
    let app = app().await;
    with_alice(&Admin::root(&app).await).await;
    let alice = Admin::login(&app, "alice", ALICE).await;
    let change = |current: &str| {
        let body = json!({"current_password": current, "new_password": "alice-new-password"});
        alice.call(Method::PUT, "/admin/v1/admins/me/password", Some(body))
    };
    assert_eq!(change("wrong-password-123").await.0, 403);
    assert_eq!(change(ALICE).await.0, 204);
    let (c, a) = (&app.client, app.address.as_str());
    assert_eq!(login(c, a, "alice", ALICE).await.status(), 401);
    assert!(
        alice.refused_within_a_second().await,
        "a token from before the password change still works"
    );
    Admin::login(&app, "alice", "alice-new-password").await;
}

/// Root deletes alice: her still-unexpired token is refused from then on.
#[tokio::test]
async fn a_deleted_admins_token_stops_working() {
    let app = app().await;
    let root = Admin::root(&app).await;
    let created = with_alice(&root).await;
    let alice = Admin::login(&app, "alice", ALICE).await;
    assert_eq!(alice.get("/admin/v1/tenants").await.0, 200);
    let path = format!("/admin/v1/admins/{}", created["id"].as_str().unwrap());
    assert_eq!(root.delete(&path).await, 204);
    assert!(
        alice.refused_within_a_second().await,
        "a deleted admin's token still works"
    );
}

#[tokio::test]
async fn the_last_admin_cannot_be_deleted() {
    let app = app().await;
    let root = Admin::root(&app).await;
    let (_, admins) = root.get("/admin/v1/admins").await;
    assert_eq!(admins.as_array().unwrap().len(), 1, "{admins}");
    let path = format!("/admin/v1/admins/{}", admins[0]["id"].as_str().unwrap());
    assert_eq!(root.delete(&path).await, 409);
}

/// Creates a tenant that must be accepted; answers it.
async fn tenant(root: &Admin<'_>, body: Value) -> Value {
    let (status, tenant) = root.post("/admin/v1/tenants", body).await;
    assert_eq!(status, 201, "{tenant}");
    tenant
}

#[tokio::test]
async fn a_tenant_takes_its_plans_quota_and_a_new_plans_on_change() {
    let app = app().await;
    let root = Admin::root(&app).await;
    let acme = tenant(&root, json!({"name": "acme", "plan": "basic"})).await;
    assert_eq!(
        acme["quota"],
        json!({"monthly_requests": 100, "requests_per_second": 10, "max_sessions": 1})
    );
    assert_eq!(acme["status"], "active");
    let path = format!("/admin/v1/tenants/{}", acme["id"].as_str().unwrap());
    let mega = Some(json!({"plan": "mega"}));
    let (status, mega) = root.call(Method::PATCH, &path, mega).await;
    assert_eq!(status, 200);
    assert_eq!(
        mega["quota"],
        json!({"monthly_requests": 50000, "requests_per_second": 25, "max_sessions": null})
    );
}

#[tokio::test]
async fn a_custom_tenant_takes_its_own_quota() {
    let app = app().await;
    let root = Admin::root(&app).await;
    let quota = json!({"monthly_requests": 5, "requests_per_second": null});
    let big = tenant(
        &root,
        json!({"name": "big", "plan": "custom", "quota": quota}),
    )
    .await;
    assert_eq!(
        big["quota"],
        json!({"monthly_requests": 5, "requests_per_second": null, "max_sessions": null})
    );
}

/// Names are unique, on creation and on change; a custom plan needs its quota; names are
/// lowercase.
#[tokio::test]
async fn tenant_bodies_breaking_the_rules_are_refused() {
    let app = app().await;
    let root = Admin::root(&app).await;
    let acme = tenant(&root, json!({"name": "acme", "plan": "basic"})).await;
    tenant(&root, json!({"name": "big", "plan": "custom", "quota": {}})).await;
    let (status, body) = root
        .post("/admin/v1/tenants", json!({"name": "acme", "plan": "pro"}))
        .await;
    assert_eq!((status, &body["statusCode"]), (409, &json!(409)));
    for body in [
        json!({"name": "x", "plan": "custom"}),
        json!({"name": "Bad Name", "plan": "pro"}),
    ] {
        assert_eq!(
            root.post("/admin/v1/tenants", body.clone()).await.0,
            422,
            "{body}"
        );
    }
    let path = format!("/admin/v1/tenants/{}", acme["id"].as_str().unwrap());
    let rename = Some(json!({"name": "big"}));
    assert_eq!(root.call(Method::PATCH, &path, rename).await.0, 409);
}

#[tokio::test]
async fn tenants_are_paged_and_deleted() {
    let app = app().await;
    let root = Admin::root(&app).await;
    let acme = tenant(&root, json!({"name": "acme", "plan": "basic"})).await;
    tenant(&root, json!({"name": "big", "plan": "custom", "quota": {}})).await;
    let (_, page) = root.get("/admin/v1/tenants?per_page=1&page=2").await;
    assert_eq!(page["total"], 2);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["name"], "big");

    let path = format!("/admin/v1/tenants/{}", acme["id"].as_str().unwrap());
    assert_eq!(root.delete(&path).await, 200);
    assert_eq!(root.get(&path).await.0, 404);
}

/// Paging a hostile caller controls: out-of-range numbers are brought into range (a page is
/// 1 to 200 rows, pages start at 1), a page past the end is empty, and what is not a number is
/// a 400 in the error shape.
#[tokio::test]
async fn paging_out_of_range_is_bounded_and_garbage_is_400() {
    let app = app().await;
    let root = Admin::root(&app).await;
    for name in ["a1", "a2", "a3"] {
        tenant(&root, json!({"name": name, "plan": "basic"})).await;
    }
    let (_, page) = root.get("/admin/v1/tenants?per_page=0&page=0").await;
    assert_eq!(
        (page["page"].clone(), page["per_page"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(page["items"][0]["name"], "a1");
    let (_, page) = root.get("/admin/v1/tenants?per_page=4294967295").await;
    assert_eq!(page["per_page"], 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    let (status, page) = root
        .get("/admin/v1/tenants?page=4294967295&per_page=200")
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        (page["total"].clone(), page["items"].clone()),
        (json!(3), json!([]))
    );
    for garbage in ["page=-1", "per_page=abc", "page=4294967296", "page=1e3"] {
        let (status, body) = root.get(&format!("/admin/v1/tenants?{garbage}")).await;
        assert_eq!(status, 400, "{garbage}: {body}");
        assert_eq!(body["statusCode"], 400, "{garbage}: {body}");
    }
}

#[tokio::test]
async fn the_keys_table_holds_no_plaintext() {
    let app = app().await;
    let Provisioned {
        token,
        tenant,
        key: created,
    } = provision(&app.client, &app.address, "acme", &["messages:send"]).await;
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with(&format!("wagw_{}_", created["id"].as_str().unwrap())));
    let secret = &key[key.rfind('_').unwrap() + 1..];

    let rows: Vec<String> = sqlx::query_scalar("SELECT row_to_json(k)::text FROM tenant_keys k")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(
        !rows[0].contains(secret) && !rows[0].contains(&secret[..16]),
        "{}",
        rows[0]
    );
    let hash: String = sqlx::query_scalar("SELECT secret_hash FROM tenant_keys")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$"));

    let root = Admin { app: &app, token };
    let (_, list) = root.get(&format!("/admin/v1/tenants/{tenant}/keys")).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(secret));
    assert_eq!(list["items"][0]["scopes"], json!(["messages:send"]));
}

#[tokio::test]
async fn failed_logins_are_slowed_then_refused() {
    let app = app().await;
    let (c, a) = (&app.client, app.address.as_str());
    let mut slowest_late = Duration::ZERO;
    for attempt in 1..=10 {
        let started = Instant::now();
        let res = login(c, a, ADMIN_USER, "wrong-password-xyz").await;
        assert_eq!(res.status(), 401, "attempt {attempt}");
        if attempt >= 4 {
            slowest_late = slowest_late.max(started.elapsed());
        }
    }
    assert!(
        slowest_late >= Duration::from_millis(250),
        "failures were not slowed: {slowest_late:?}"
    );
    // Now even the right password for that user is refused until the window passes.
    let res = login(c, a, ADMIN_USER, ADMIN_PASSWORD).await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().get("retry-after").is_some());
    assert_eq!(res.json::<Value>().await.unwrap()["statusCode"], 429);
}

/// The failure count is kept in PostgreSQL: guesses spread over two replicas are counted
/// together, and the refusal holds on both.
#[tokio::test]
async fn failed_logins_are_counted_across_replicas() {
    let app = app().await;
    let replica = crate::helpers::spawn_replica(&app).await;
    let bases = [app.address.as_str(), replica.address.as_str()];
    for attempt in 0..10 {
        let base = bases[attempt % 2];
        let res = login(&app.client, base, ADMIN_USER, "wrong-password-xyz").await;
        assert_eq!(res.status(), 401, "attempt {attempt}");
    }
    for base in bases {
        let res = login(&app.client, base, ADMIN_USER, ADMIN_PASSWORD).await;
        assert_eq!(res.status(), 429, "refused on {base}");
        let retry_after: u64 = res.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (1..=300).contains(&retry_after),
            "Retry-After from the window's end: {retry_after}"
        );
    }
}

#[tokio::test]
async fn admin_actions_are_audited() {
    let app = app().await;
    let root = Admin::root(&app).await;
    let res = app
        .client
        .post(app.url("/admin/v1/tenants"))
        .bearer_auth(&root.token)
        .header("X-Request-Id", "audit-req-1")
        .json(&json!({"name": "acme", "plan": "pro"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let tenant: Value = res.json().await.unwrap();
    let tenant_id = tenant["id"].as_str().unwrap();
    let key = create_key(&app.client, &app.address, &root.token, tenant_id, &["*"]).await;
    let revoke = format!(
        "/admin/v1/tenants/{tenant_id}/keys/{}",
        key["id"].as_str().unwrap()
    );
    assert_eq!(root.delete(&revoke).await, 204);

    let (_, page) = root
        .get(&format!("/admin/v1/audit?target_id={tenant_id}"))
        .await;
    assert_eq!(page["total"], 1);
    let entry = &page["items"][0];
    assert_eq!(entry["action"], "tenant.create");
    assert_eq!(entry["admin_username"], ADMIN_USER);
    assert_eq!(entry["request_id"], "audit-req-1");
    assert_eq!(entry["client_addr"], "127.0.0.1");
    assert!(entry["at"].is_string());

    let (_, page) = root.get("/admin/v1/audit?per_page=50").await;
    let actions: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec!["key.revoke", "key.create", "tenant.create", "admin.login"]
    );
    // The plaintext key is never written to the audit log.
    assert!(!page.to_string().contains(key["key"].as_str().unwrap()));
}

#[tokio::test]
async fn sandbox_mode_creates_an_admin_with_a_password_file_and_keeps_the_jwt_secret() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let app = crate::helpers::spawn_app_with(|vars| {
        vars.remove("WAGW_UPSTREAM_KEY");
        vars.remove("WAGW_JWT_SECRET");
        vars.remove("WAGW_ADMIN_USER");
        vars.remove("WAGW_ADMIN_PASSWORD");
        vars.insert("WAGW_DATA_DIR".into(), dir.path().display().to_string());
    })
    .await;
    let file = dir.path().join("initial-admin-password");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let password = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert!(password.len() >= 20);
    Admin::login(&app, "admin", &password).await;
    let stored: String =
        sqlx::query_scalar("SELECT value FROM gateway_settings WHERE name = 'jwt_secret'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored.len(), 64);
}

#[tokio::test]
async fn a_malformed_tenant_id_in_a_path_is_404_in_the_error_shape_and_changes_nothing() {
    let app = app().await;
    let root = Admin::root(&app).await;
    let acme = tenant(&root, json!({"name": "acme", "plan": "pro"})).await;
    let id = acme["id"].as_str().unwrap();
    for bad in ["not-a-uuid", "1", "%27%20OR%201%3D1", &format!("{id}x")] {
        for (method, path) in [
            (Method::GET, format!("/admin/v1/tenants/{bad}")),
            (Method::PATCH, format!("/admin/v1/tenants/{bad}")),
            (Method::DELETE, format!("/admin/v1/tenants/{bad}")),
            (Method::GET, format!("/admin/v1/tenants/{bad}/keys")),
            (Method::GET, format!("/admin/v1/tenants/{bad}/usage")),
            (Method::DELETE, format!("/admin/v1/tenants/{bad}/keys/k1")),
        ] {
            let (status, body) = root
                .call(method.clone(), &path, Some(json!({"name": "x"})))
                .await;
            // A malformed id names no resource: 404, as an unknown one.
            assert_eq!(status, 404, "{method} {path}: {body}");
            assert_eq!(body["statusCode"], 404, "{body}");
            assert!(
                body["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{body}"
            );
        }
    }
    let (status, still) = root.get(&format!("/admin/v1/tenants/{id}")).await;
    assert_eq!((status, &still["name"]), (200, &json!("acme")));
}
