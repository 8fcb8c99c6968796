//! The admin API: tokens, admins, tenants, keys at rest, throttling and the audit log.

use crate::helpers::TEST_JWT_SECRET;
use crate::helpers::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

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

async fn assert_refused(app: &crate::helpers::TestApp, token: Option<&str>, what: &str) {
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

#[tokio::test]
async fn admin_routes_refuse_every_bad_token() {
    let app = app().await;
    let good = admin_token(&app.client, &app.address).await;
    // The good token works, so the refusals below are about the token alone.
    let res = admin_call(
        &app.client,
        &app.address,
        &good,
        Method::GET,
        "/admin/v1/tenants",
        None,
    )
    .await;
    assert_eq!(res.status(), 200);

    let admin_id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM admins WHERE username = $1")
        .bind(ADMIN_USER)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    // Every claim a real token carries, so each refusal below is about its stated reason.
    let claims = |iat: i64, exp: i64| {
        json!({"sub": admin_id, "iat": iat, "exp": exp, "jti": uuid::Uuid::new_v4(),
               "iss": "wa-gateway", "aud": "wa-gateway-admin", "ver": 0})
    };
    let valid = claims(now, now + 600);

    assert_refused(&app, None, "no token").await;
    assert_refused(&app, Some("not-a-jwt"), "garbage").await;
    let expired = hs(
        jsonwebtoken::Algorithm::HS256,
        TEST_JWT_SECRET,
        &claims(now - 7200, now - 3600),
    );
    assert_refused(&app, Some(&expired), "expired").await;
    let foreign = hs(
        jsonwebtoken::Algorithm::HS256,
        "another-secret-another-secret-0000",
        &valid,
    );
    assert_refused(&app, Some(&foreign), "signed with another secret").await;
    let hs512 = hs(jsonwebtoken::Algorithm::HS512, TEST_JWT_SECRET, &valid);
    assert_refused(&app, Some(&hs512), "another HMAC algorithm").await;
    // Tampered: a valid token whose claims were swapped for others, signature kept.
    let parts: Vec<&str> = good.split('.').collect();
    let other_claims = b64(&claims(now, now + 999_999));
    let tampered = format!("{}.{}.{}", parts[0], other_claims, parts[2]);
    assert_refused(&app, Some(&tampered), "tampered").await;
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&valid)
    );
    assert_refused(&app, Some(&none), "alg none").await;
    let rs256 = format!(
        "{}.{}.{}",
        b64(&json!({"alg": "RS256", "typ": "JWT"})),
        b64(&valid),
        URL_SAFE_NO_PAD.encode([7u8; 256])
    );
    assert_refused(&app, Some(&rs256), "RS256").await;

    // A tenant key is not an admin token.
    let tenant = create_tenant(&app.client, &app.address, &good, "acme").await;
    let key = create_key(&app.client, &app.address, &good, &tenant, &["*"]).await;
    assert_refused(&app, Some(key["key"].as_str().unwrap()), "tenant key").await;
}

#[tokio::test]
async fn admins_are_managed_and_a_deleted_admins_token_stops_working() {
    let app = app().await;
    let root = admin_token(&app.client, &app.address).await;
    let (c, a) = (&app.client, app.address.as_str());

    let res = admin_call(
        c,
        a,
        &root,
        Method::POST,
        "/admin/v1/admins",
        Some(json!({"username": "alice", "password": "short"})),
    )
    .await;
    assert_eq!(res.status(), 422);
    let res = admin_call(
        c,
        a,
        &root,
        Method::POST,
        "/admin/v1/admins",
        Some(json!({"username": "alice", "password": "alice-long-password"})),
    )
    .await;
    assert_eq!(res.status(), 201);
    let alice: Value = res.json().await.unwrap();
    let res = admin_call(
        c,
        a,
        &root,
        Method::POST,
        "/admin/v1/admins",
        Some(json!({"username": "alice", "password": "alice-long-password"})),
    )
    .await;
    assert_eq!(res.status(), 409);

    let list: Value = admin_call(c, a, &root, Method::GET, "/admin/v1/admins", None)
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["alice", ADMIN_USER]);

    // Alice changes her own password: the old one stops working, the new one works.
    let res = login(c, a, "alice", "alice-long-password").await;
    let alice_token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = admin_call(
        c,
        a,
        &alice_token,
        Method::PUT,
        "/admin/v1/admins/me/password",
        Some(
            json!({"current_password": "wrong-password-123", "new_password": "alice-new-password"}),
        ),
    )
    .await;
    assert_eq!(res.status(), 403);
    let res = admin_call(c, a, &alice_token, Method::PUT, "/admin/v1/admins/me/password",
        Some(json!({"current_password": "alice-long-password", "new_password": "alice-new-password"}))).await;
    assert_eq!(res.status(), 204);
    assert_eq!(
        login(c, a, "alice", "alice-long-password").await.status(),
        401
    );
    // The change ended the token it was made with: alice logs in again with the new one.
    let refused = crate::helpers::eventually(Duration::from_secs(1), || async {
        admin_call(c, a, &alice_token, Method::GET, "/admin/v1/tenants", None)
            .await
            .status()
            == 401
    })
    .await;
    assert!(
        refused,
        "a token from before the password change still works"
    );
    let res = login(c, a, "alice", "alice-new-password").await;
    assert_eq!(res.status(), 200);
    let alice_token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // Root deletes alice: her still-unexpired token is refused from now on.
    let res = admin_call(c, a, &alice_token, Method::GET, "/admin/v1/tenants", None).await;
    assert_eq!(res.status(), 200);
    let res = admin_call(
        c,
        a,
        &root,
        Method::DELETE,
        &format!("/admin/v1/admins/{}", alice["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(res.status(), 204);
    let refused = crate::helpers::eventually(Duration::from_secs(1), || async {
        admin_call(c, a, &alice_token, Method::GET, "/admin/v1/tenants", None)
            .await
            .status()
            == 401
    })
    .await;
    assert!(refused, "a deleted admin's token still works");

    // The last admin cannot be deleted.
    let root_id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM admins")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let res = admin_call(
        c,
        a,
        &root,
        Method::DELETE,
        &format!("/admin/v1/admins/{root_id}"),
        None,
    )
    .await;
    assert_eq!(res.status(), 409);
}

#[tokio::test]
async fn tenants_take_plans_quotas_and_unique_names() {
    let app = app().await;
    let token = admin_token(&app.client, &app.address).await;
    let (c, a) = (&app.client, app.address.as_str());

    let res = admin_call(
        c,
        a,
        &token,
        Method::POST,
        "/admin/v1/tenants",
        Some(json!({"name": "acme", "plan": "basic"})),
    )
    .await;
    assert_eq!(res.status(), 201);
    let acme: Value = res.json().await.unwrap();
    assert_eq!(
        acme["quota"],
        json!({"monthly_requests": 100, "requests_per_second": 10, "max_sessions": 1})
    );
    assert_eq!(acme["status"], "active");
    let res = admin_call(
        c,
        a,
        &token,
        Method::POST,
        "/admin/v1/tenants",
        Some(json!({"name": "acme", "plan": "pro"})),
    )
    .await;
    assert_eq!(res.status(), 409);
    assert_eq!(res.json::<Value>().await.unwrap()["statusCode"], 409);
    let res = admin_call(
        c,
        a,
        &token,
        Method::POST,
        "/admin/v1/tenants",
        Some(json!({"name": "x", "plan": "custom"})),
    )
    .await;
    assert_eq!(res.status(), 422);
    let res = admin_call(
        c,
        a,
        &token,
        Method::POST,
        "/admin/v1/tenants",
        Some(json!({"name": "Bad Name", "plan": "pro"})),
    )
    .await;
    assert_eq!(res.status(), 422);
    let res = admin_call(c, a, &token, Method::POST, "/admin/v1/tenants",
        Some(json!({"name": "big", "plan": "custom", "quota": {"monthly_requests": 5, "requests_per_second": null}}))).await;
    assert_eq!(res.status(), 201);
    let big: Value = res.json().await.unwrap();
    assert_eq!(
        big["quota"],
        json!({"monthly_requests": 5, "requests_per_second": null, "max_sessions": null})
    );

    let id = acme["id"].as_str().unwrap();
    let res = admin_call(
        c,
        a,
        &token,
        Method::PATCH,
        &format!("/admin/v1/tenants/{id}"),
        Some(json!({"plan": "mega"})),
    )
    .await;
    assert_eq!(res.status(), 200);
    let mega: Value = res.json().await.unwrap();
    assert_eq!(
        mega["quota"],
        json!({"monthly_requests": 50000, "requests_per_second": 25, "max_sessions": null})
    );
    let res = admin_call(
        c,
        a,
        &token,
        Method::PATCH,
        &format!("/admin/v1/tenants/{id}"),
        Some(json!({"name": "big"})),
    )
    .await;
    assert_eq!(res.status(), 409);

    let page: Value = admin_call(
        c,
        a,
        &token,
        Method::GET,
        "/admin/v1/tenants?per_page=1&page=2",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(page["total"], 2);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["name"], "big");

    let res = admin_call(
        c,
        a,
        &token,
        Method::DELETE,
        &format!("/admin/v1/tenants/{id}"),
        None,
    )
    .await;
    assert_eq!(res.status(), 200);
    let res = admin_call(
        c,
        a,
        &token,
        Method::GET,
        &format!("/admin/v1/tenants/{id}"),
        None,
    )
    .await;
    assert_eq!(res.status(), 404);
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

    let list: Value = admin_call(
        &app.client,
        &app.address,
        &token,
        Method::GET,
        &format!("/admin/v1/tenants/{tenant}/keys"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
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
        let res = login(
            &app.client,
            bases[attempt % 2],
            ADMIN_USER,
            "wrong-password-xyz",
        )
        .await;
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
    let token = admin_token(&app.client, &app.address).await;
    let res = app
        .client
        .post(app.url("/admin/v1/tenants"))
        .bearer_auth(&token)
        .header("X-Request-Id", "audit-req-1")
        .json(&json!({"name": "acme", "plan": "pro"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let tenant: Value = res.json().await.unwrap();
    let tenant_id = tenant["id"].as_str().unwrap();
    let key = create_key(&app.client, &app.address, &token, tenant_id, &["*"]).await;
    let res = admin_call(
        &app.client,
        &app.address,
        &token,
        Method::DELETE,
        &format!(
            "/admin/v1/tenants/{tenant_id}/keys/{}",
            key["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(res.status(), 204);

    let page: Value = admin_call(
        &app.client,
        &app.address,
        &token,
        Method::GET,
        &format!("/admin/v1/audit?target_id={tenant_id}"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(page["total"], 1);
    let entry = &page["items"][0];
    assert_eq!(entry["action"], "tenant.create");
    assert_eq!(entry["admin_username"], ADMIN_USER);
    assert_eq!(entry["request_id"], "audit-req-1");
    assert_eq!(entry["client_addr"], "127.0.0.1");
    assert!(entry["at"].is_string());

    let page: Value = admin_call(
        &app.client,
        &app.address,
        &token,
        Method::GET,
        "/admin/v1/audit?per_page=50",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
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
    assert_eq!(
        login(&app.client, &app.address, "admin", &password)
            .await
            .status(),
        200
    );
    let stored: String =
        sqlx::query_scalar("SELECT value FROM gateway_settings WHERE name = 'jwt_secret'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored.len(), 64);
}
