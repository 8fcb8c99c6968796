//! Tenant keys on `/v1`: the three headers, one 401 for every bad key, scopes, suspension,
//! rotation, guessing limits, and revocation reaching another gateway process within a second.

use crate::admin::Admin;
use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use wa_gateway::domain::{api_key as tenant_key, Scope};
use wa_gateway::http::routes::{endpoints, Handling};

#[tokio::test]
async fn a_key_works_in_all_three_headers() {
    let app = app().await;
    let created = provision(&app.client, &app.address, "acme", &["sessions:read"]).await;
    let key = created.key["key"].as_str().unwrap();
    for (header, value) in [
        ("Authorization", format!("Bearer {key}")),
        ("X-Api-Key", key.to_owned()),
        ("x-rapidapi-key", key.to_owned()),
    ] {
        let res = app
            .client
            .get(app.url("/v1/me"))
            .header(header, value)
            .header("x-rapidapi-host", "whatsapp-messaging-bot.p.rapidapi.com")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{header}");
        let me: Value = res.json().await.unwrap();
        assert_eq!(me["tenant"]["name"], "acme");
        assert_eq!(me["key"]["scopes"], json!(["sessions:read"]));
        assert_eq!(me["key"]["name"], "test key");
        assert!(me["usage"]["used"].is_number());
        assert_eq!(me["quota"]["monthly_requests"], Value::Null);
    }
}

/// Waits (up to `patience`) until `key` is refused on `/v1/me`; answers when that was seen.
async fn refused_at(app: &TestApp, key: &str, patience: Duration) -> chrono::DateTime<chrono::Utc> {
    let refused = eventually(patience, || async {
        me(&app.client, &app.address, key).await.status() == 401
    })
    .await;
    assert!(refused, "still accepted after {patience:?}");
    chrono::Utc::now()
}

/// A key of `tenant` that expires `lifetime` from now; answers it and its expiry.
async fn expiring_key(
    admin: &Admin<'_>,
    tenant: &str,
    lifetime: chrono::Duration,
) -> (String, chrono::DateTime<chrono::Utc>) {
    let expires_at = chrono::Utc::now() + lifetime;
    let body =
        json!({"name": "short-lived", "scopes": ["*"], "expires_at": expires_at.to_rfc3339()});
    let (status, created) = admin
        .post(&format!("/admin/v1/tenants/{tenant}/keys"), body)
        .await;
    assert_eq!(status, 201, "{created}");
    (created["key"].as_str().unwrap().to_owned(), expires_at)
}

/// Missing, malformed, broken, unknown, wrong, expired and revoked keys all get the same 401.
#[tokio::test]
async fn every_bad_key_gets_the_same_401() {
    let app = app().await;
    let Provisioned {
        token,
        tenant,
        key: created,
    } = provision(&app.client, &app.address, "acme", &["sessions:read"]).await;
    let admin = Admin { app: &app, token };
    let key = created["key"].as_str().unwrap();
    let id = created["id"].as_str().unwrap();
    let mut broken_checksum = key.to_owned();
    broken_checksum.pop();
    broken_checksum.push(if key.ends_with('x') { 'y' } else { 'x' });
    let (expiring, expires_at) = expiring_key(&admin, &tenant, chrono::Duration::seconds(2)).await;
    assert_eq!(me(&app.client, &app.address, &expiring).await.status(), 200);
    let expired_at = refused_at(&app, &expiring, Duration::from_secs(10)).await;
    assert!(expired_at >= expires_at, "refused before its expiry");

    let mut bodies = Vec::new();
    for (what, presented) in [
        ("missing", None),
        ("malformed", Some("hello".to_owned())),
        ("bad checksum", Some(broken_checksum)),
        (
            "unknown id",
            Some(tenant_key::assemble(
                "ZZZZZZZZZZZZ",
                "0123456789abcdefghijkl",
            )),
        ),
        (
            "wrong secret",
            Some(tenant_key::assemble(id, "0123456789abcdefghijkl")),
        ),
        ("expired", Some(expiring)),
    ] {
        let mut req = app.client.get(app.url("/v1/me"));
        if let Some(k) = presented {
            req = req.header("X-Api-Key", k);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401, "{what}");
        bodies.push(res.text().await.unwrap());
    }
    assert_eq!(
        admin
            .delete(&format!("/admin/v1/tenants/{tenant}/keys/{id}"))
            .await,
        204
    );
    refused_at(&app, key, Duration::from_secs(1)).await;
    let revoked = me(&app.client, &app.address, key).await;
    bodies.push(revoked.text().await.unwrap());
    assert!(bodies.iter().all(|b| b == &bodies[0]), "{bodies:?}");
    let message = serde_json::from_str::<Value>(&bodies[0]).unwrap()["message"].clone();
    assert_eq!(message, "invalid API key");
}

fn concrete(path: &str) -> String {
    path.replace("{session}", "s1")
        .replace("{groupId}", "g1")
        .replace("{channelId}", "c1")
}

#[tokio::test]
async fn each_scope_admits_its_endpoints_and_nothing_else() {
    let app = app().await;
    let token = admin_token(&app.client, &app.address).await;
    let tenant = create_tenant(&app.client, &app.address, &token, "acme").await;
    let rows: Vec<_> = endpoints::all()
        .iter()
        .filter(|e| e.handling != Handling::WebhookRelay)
        .collect();
    let body = json!({"session": "s1", "name": "s1", "chatId": "123@c.us", "text": "hi"});
    for scope in Scope::EVERY {
        let created = create_key(
            &app.client,
            &app.address,
            &token,
            &tenant,
            &[scope.as_str()],
        )
        .await;
        let key = created["key"].as_str().unwrap();
        // /v1/me needs no scope.
        assert_eq!(me(&app.client, &app.address, key).await.status(), 200);
        for e in &rows {
            let method = Method::from_bytes(e.method.as_str().as_bytes()).unwrap();
            let mut req = app
                .client
                .request(method.clone(), app.url(&concrete(e.path)))
                .header("X-Api-Key", key);
            if method != Method::GET && method != Method::DELETE {
                req = req.json(&body);
            }
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let text = res.text().await.unwrap();
            if scope == Scope::All || e.scope == scope {
                assert!(
                    status != 401 && status != 403,
                    "{} {} with {}: {status} {text}",
                    e.method,
                    e.path,
                    scope.as_str()
                );
            } else {
                assert_eq!(
                    status,
                    403,
                    "{} {} with {}: {text}",
                    e.method,
                    e.path,
                    scope.as_str()
                );
                assert!(text.contains(&format!("`{}`", e.scope.as_str())), "{text}");
            }
        }
    }
}

#[tokio::test]
async fn a_suspended_tenant_gets_403_on_every_call_until_reactivated() {
    let app = app().await;
    let Provisioned { token, tenant, key } =
        provision(&app.client, &app.address, "acme", &["*"]).await;
    let admin = Admin { app: &app, token };
    let key = key["key"].as_str().unwrap();
    assert_eq!(me(&app.client, &app.address, key).await.status(), 200);

    let path = format!("/admin/v1/tenants/{tenant}");
    let patch =
        |status: &'static str| admin.call(Method::PATCH, &path, Some(json!({ "status": status })));
    let app = &app;
    let me_answers = |status: u16| {
        eventually(Duration::from_secs(1), move || async move {
            me(&app.client, &app.address, key).await.status() == status
        })
    };
    assert_eq!(patch("suspended").await.0, 200);
    assert!(me_answers(403).await, "/v1/me of a suspended tenant");
    let sessions = app
        .client
        .get(app.url("/v1/sessions"))
        .header("X-Api-Key", key);
    let res = sessions.send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("suspended"));
    assert_eq!(patch("active").await.0, 200);
    assert!(me_answers(200).await, "/v1/me once reactivated");
}

#[tokio::test]
async fn a_rotated_key_keeps_working_for_its_grace_period_only() {
    let app = app().await;
    let Provisioned {
        token,
        tenant,
        key: old,
    } = provision(&app.client, &app.address, "acme", &["messages:send"]).await;
    let admin = Admin { app: &app, token };
    let old_key = old["key"].as_str().unwrap();
    assert_eq!(me(&app.client, &app.address, old_key).await.status(), 200);

    let rotate = format!(
        "/admin/v1/tenants/{tenant}/keys/{}/rotate",
        old["id"].as_str().unwrap()
    );
    let grace = chrono::Duration::seconds(2);
    let rotated_at = chrono::Utc::now();
    let (status, rotated) = admin.post(&rotate, json!({"grace_seconds": 2})).await;
    assert_eq!(status, 201, "{rotated}");
    let new_key = rotated["key"].as_str().unwrap();
    assert_ne!(new_key, old_key);
    assert_eq!(rotated["scopes"], json!(["messages:send"]));
    assert_eq!(rotated["replaces"], old["id"]);
    assert_eq!(me(&app.client, &app.address, old_key).await.status(), 200);
    assert_eq!(me(&app.client, &app.address, new_key).await.status(), 200);
    // A second rotation of the old key is refused: rotate the replacement instead.
    assert_eq!(admin.call(Method::POST, &rotate, None).await.0, 409);

    let refused = refused_at(&app, old_key, Duration::from_secs(3)).await;
    assert!(
        refused - rotated_at >= grace,
        "refused {} after the rotation",
        refused - rotated_at
    );
    assert_eq!(me(&app.client, &app.address, new_key).await.status(), 200);
}

#[tokio::test]
async fn repeated_wrong_secrets_for_one_key_id_are_rate_limited_across_replicas() {
    let app = app().await;
    let replica = crate::helpers::spawn_replica(&app).await;
    let bases = [app.address.as_str(), replica.address.as_str()];
    let created = provision(&app.client, &app.address, "acme", &["*"])
        .await
        .key;
    let id = created["id"].as_str().unwrap();
    // Guesses spread over two replicas count together (the count is in PostgreSQL).
    for i in 0..10 {
        let wrong = tenant_key::assemble(id, &format!("{i:0>22}"));
        assert_eq!(me(&app.client, bases[i % 2], &wrong).await.status(), 401);
    }
    let wrong = tenant_key::assemble(id, "abcdefghijklmnopqrstuv");
    for base in bases {
        let res = me(&app.client, base, &wrong).await;
        assert_eq!(res.status(), 429, "refused on {base}");
        assert!(res.headers().get("retry-after").is_some());
    }
}

#[tokio::test]
async fn a_key_revoked_through_one_process_is_refused_by_another_within_a_second() {
    let db = TestDb::create().await;
    let mut vars = base_vars(&db, "http://127.0.0.1:9");
    with_admin(&mut vars);
    let one = GatewayProcess::start(&vars).await;
    let two = GatewayProcess::start(&vars).await;
    let client = crate::helpers::http_client();

    let Provisioned {
        token,
        tenant,
        key: created,
    } = provision(&client, &one.address, "acme", &["*"]).await;
    let key = created["key"].as_str().unwrap();
    // Warm both caches.
    assert_eq!(me(&client, &one.address, key).await.status(), 200);
    assert_eq!(me(&client, &two.address, key).await.status(), 200);
    assert_eq!(me(&client, &two.address, key).await.status(), 200);

    let res = admin_call(
        &client,
        &one.address,
        &token,
        Method::DELETE,
        &format!(
            "/admin/v1/tenants/{tenant}/keys/{}",
            created["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(res.status(), 204);
    let revoked_at = Instant::now();
    let refused = eventually(Duration::from_secs(1), || async {
        me(&client, &two.address, key).await.status() == 401
    })
    .await;
    assert!(
        refused,
        "the other process still accepted the revoked key after {:?}",
        revoked_at.elapsed()
    );

    // Neither process logged a key, a password or a token.
    let secret = &key[key.rfind('_').unwrap() + 1..];
    for logs in [one.logs(), two.logs()] {
        assert!(logs.contains("served"), "no access log captured: {logs}");
        for leaked in [
            secret,
            ADMIN_PASSWORD,
            token.as_str(),
            crate::helpers::TEST_JWT_SECRET,
        ] {
            assert!(!logs.contains(leaked), "a secret reached the logs:\n{logs}");
        }
    }
}

#[tokio::test]
async fn the_cli_creates_a_tenant_and_prints_a_working_key_once() {
    let app = app().await;
    let run = |args: &[&str]| {
        let out = crate::helpers::command(&app.vars)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let tenant = run(&[
        "admin",
        "create-tenant",
        "--name",
        "scripted",
        "--plan",
        "ultra",
    ]);
    assert_eq!(tenant["quota"]["max_sessions"], 10);
    let key = run(&[
        "admin",
        "create-key",
        "--tenant",
        "scripted",
        "--name",
        "ci",
        "--scopes",
        "messages:send,sessions:read",
    ]);
    let key = key["key"].as_str().unwrap();
    let res = me(&app.client, &app.address, key).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap()["key"]["scopes"],
        json!(["messages:send", "sessions:read"])
    );
}

/// Not a timed test: run with `bench/key_verification.sh` (release build) to print numbers.
#[tokio::test]
#[ignore]
async fn bench_key_verification() {
    use wa_gateway::services::auth::{Auth, Change};
    let app = app().await;
    let created = provision(&app.client, &app.address, "bench", &["*"])
        .await
        .key;
    let key = created["key"].as_str().unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let config = crate::helpers::config_from(&app.vars);
    let auth = Auth::new(
        wa_gateway::db::Db::on_current_runtime(app.pool.clone()),
        &config.admin,
    )
    .await
    .unwrap();

    let cold_n = 20;
    let started = Instant::now();
    for _ in 0..cold_n {
        auth.apply(&Change::Key(id.clone())).await;
        auth.authenticate_key(key, "127.0.0.1").await.unwrap();
    }
    let cold = started.elapsed() / cold_n;

    let warm_n = 200_000;
    auth.authenticate_key(key, "127.0.0.1").await.unwrap();
    let started = Instant::now();
    for _ in 0..warm_n {
        std::hint::black_box(auth.authenticate_key(key, "127.0.0.1").await.unwrap());
    }
    let warm = started.elapsed() / warm_n;
    println!(
        "key verification: warm (cached) {:.2} µs/call over {warm_n} calls; cold (database + argon2id) {:.2} ms/call over {cold_n} calls",
        warm.as_secs_f64() * 1e6,
        cold.as_secs_f64() * 1e3
    );
}
