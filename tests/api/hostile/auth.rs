//! Hostile callers: auth. See mod.rs.
//!
//! Strangers guessing key secrets and passwords, alone and in concurrent bursts, from one
//! address or posing as many behind a trusted proxy; forged tokens; oversized names; admin
//! bodies with typos; quotas at the integer edge; a tenant flooding with a valid key.

use crate::admin::Admin;
use crate::helpers::*;
use crate::helpers::{admin_token, login, me, provision, provision_with, with_admin};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use wa_gateway::domain::api_key as tenant_key;

/// A gateway behind a "proxy" at 127.0.0.1: `X-Forwarded-For` names the client.
async fn behind_proxy() -> TestApp {
    spawn_app_with(|vars| {
        with_admin(vars);
        vars.insert("WAGW_TRUSTED_PROXIES".into(), "127.0.0.1/32".into());
    })
    .await
}

async fn me_from(app: &TestApp, key: &str, client_addr: &str) -> reqwest::Response {
    app.client
        .get(app.url("/v1/me"))
        .header("x-api-key", key)
        .header("x-forwarded-for", client_addr)
        .send()
        .await
        .unwrap()
}

async fn login_from(app: &TestApp, user: &str, pw: &str, client_addr: &str) -> reqwest::Response {
    app.client
        .post(app.url("/admin/v1/login"))
        .header("x-forwarded-for", client_addr)
        .json(&json!({"username": user, "password": pw}))
        .send()
        .await
        .unwrap()
}

fn count(statuses: &[StatusCode], wanted: u16) -> usize {
    statuses.iter().filter(|s| s.as_u16() == wanted).count()
}

/// Asserts the error shape and, for refusals of a limit, a Retry-After of at least 1.
async fn assert_limit_refusal(res: reqwest::Response, status: u16) {
    assert_eq!(res.status(), status);
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["statusCode"], status, "{body}");
    assert!(body["message"].is_string(), "{body}");
}

/// M1: 60 concurrent well-formed wrong secrets for one key id: the failure limit (10) is
/// reserved before argon2 runs, so exactly 10 are verified (401) and the other 50 answer 429.
#[tokio::test]
async fn m1_concurrent_wrong_secrets_for_one_key_id_verify_at_most_the_limit() {
    let app = spawn_app_with(with_admin).await;
    let created = provision(&app.client, &app.address, "acme", &["*"]).await;
    let id = created.key["id"].as_str().unwrap().to_owned();
    let guesses = (0..60).map(|i| {
        let wrong = tenant_key::assemble(&id, &format!("{i:0>22}"));
        let app = &app;
        async move { me(&app.client, &app.address, &wrong).await.status() }
    });
    let statuses = join_all(guesses).await;
    let verified = count(&statuses, 401);
    assert_eq!(verified, 10, "wrong secrets verified: {statuses:?}");
    assert_eq!(count(&statuses, 429), 60 - verified, "{statuses:?}");
}

/// M1: 40 concurrent wrong logins for one username: at most the limit are checked, 429s appear.
#[tokio::test]
async fn m1_concurrent_wrong_logins_for_one_username_are_refused_past_the_limit() {
    let app = spawn_app_with(with_admin).await;
    let tries = (0..40).map(|_| async {
        login(&app.client, &app.address, ADMIN_USER, "wrong-password-xyz")
            .await
            .status()
    });
    let statuses = join_all(tries).await;
    assert_eq!(count(&statuses, 401), 10, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 40 - count(&statuses, 401));
}

/// M1: a burst of credential checks beyond the argon2 queue answers 503 with Retry-After
/// instead of queueing without bound.
#[tokio::test]
async fn m1_credential_checks_beyond_the_queue_answer_503() {
    let app = spawn_app_with(|vars| {
        with_admin(vars);
        vars.insert("WAGW_AUTH_QUEUE".into(), "1".into());
    })
    .await;
    let tries = (0..30).map(|i| {
        let app = &app;
        async move {
            let res = login(&app.client, &app.address, &format!("nobody{i}"), "pw").await;
            let status = res.status();
            if status == 503 {
                assert_limit_refusal(res, 503).await;
            }
            status
        }
    });
    let statuses = join_all(tries).await;
    assert!(count(&statuses, 503) > 0, "{statuses:?}");
    assert_eq!(count(&statuses, 503) + count(&statuses, 401), 30);
    // The burst over, the real admin logs in.
    let res = login(&app.client, &app.address, ADMIN_USER, ADMIN_PASSWORD).await;
    assert_eq!(res.status(), 200);
}

/// M2: 15 forged guesses at a key id from address A do not lock the key out for its owner
/// at address B; A itself is refused.
#[tokio::test]
async fn m2_forged_guesses_from_one_address_do_not_lock_the_owner_out() {
    let app = behind_proxy().await;
    let created = provision(&app.client, &app.address, "acme", &["*"]).await;
    let id = created.key["id"].as_str().unwrap();
    let key = created.key["key"].as_str().unwrap();
    let mut last = StatusCode::OK;
    for i in 0..15 {
        let wrong = tenant_key::assemble(id, &format!("{i:0>22}"));
        last = me_from(&app, &wrong, "203.0.113.7").await.status();
    }
    assert_eq!(last, 429, "the guesser's own address is refused");
    assert_eq!(me_from(&app, key, "198.51.100.2").await.status(), 200);
}

/// M2: failed logins for other names, and for the admin's name from another address, do not
/// lock the admin out; the guessing address's own pair is refused.
#[tokio::test]
async fn m2_failed_logins_elsewhere_do_not_lock_the_admin_out() {
    let app = behind_proxy().await;
    let spray = (0..40).map(|i| {
        let app = &app;
        async move {
            login_from(app, &format!("user{i}"), "wrong-password", "203.0.113.7")
                .await
                .status()
        }
    });
    assert!(join_all(spray).await.iter().all(|s| *s == 401));
    let guesses = (0..12).map(|_| login_from(&app, ADMIN_USER, "wrong-password", "203.0.113.7"));
    join_all(guesses).await;
    let res = login_from(&app, ADMIN_USER, ADMIN_PASSWORD, "203.0.113.7").await;
    assert_eq!(res.status(), 429, "the guessing pair stays refused");
    let res = login_from(&app, ADMIN_USER, ADMIN_PASSWORD, "198.51.100.2").await;
    assert_eq!(res.status(), 200, "the admin from elsewhere gets in");
}

/// M2: without a trusted proxy, a forged `X-Forwarded-For` changes nothing: the peer counts.
#[tokio::test]
async fn m2_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let app = spawn_app_with(with_admin).await;
    for i in 0..10 {
        login_from(
            &app,
            ADMIN_USER,
            "wrong-password",
            &format!("203.0.113.{i}"),
        )
        .await;
    }
    let res = login_from(&app, ADMIN_USER, "wrong-password", "198.51.100.99").await;
    assert_limit_refusal(res, 429).await;
}

/// Lets the statistics of the gateway's own connections reach PostgreSQL's `pg_stat_*` views:
/// a backend flushes them at most once a second after its transactions.
pub(super) async fn stats_flushed() {
    // reason: nothing announces another backend's statistics flush; we can only outwait it.
    tokio::time::sleep(Duration::from_millis(2500)).await;
}

/// The index and table scans PostgreSQL has counted on `tenant_keys` (see `stats_flushed`).
async fn tenant_key_scans(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT (coalesce(seq_scan, 0) + coalesce(idx_scan, 0))::bigint
           FROM pg_stat_user_tables WHERE relname = 'tenant_keys'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// M7: keys naming ids that do not exist record no failure rows, and after the first miss a
/// repeated unknown id costs no database look-up.
#[tokio::test]
async fn m7_unknown_key_ids_cost_no_rows_and_no_repeated_lookups() {
    let app = spawn_app_with(with_admin).await;
    for i in 0..20 {
        let forged = tenant_key::assemble(&format!("{i:0>12}"), "abcdefghijklmnopqrstuv");
        assert_eq!(me(&app.client, &app.address, &forged).await.status(), 401);
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM auth_failures WHERE kind LIKE 'key%'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "failure rows for ids that do not exist");

    let forged = tenant_key::assemble("unknownKeyId", "abcdefghijklmnopqrstuv");
    assert_eq!(me(&app.client, &app.address, &forged).await.status(), 401);
    stats_flushed().await;
    let before = tenant_key_scans(&app.pool).await;
    for _ in 0..100 {
        assert_eq!(me(&app.client, &app.address, &forged).await.status(), 401);
    }
    stats_flushed().await;
    let after = tenant_key_scans(&app.pool).await;
    assert!(
        after - before < 5,
        "{} look-ups for one unknown id",
        after - before
    );
}

/// M8: a tenant's valid key flooding an uncounted endpoint meets the per-key limiter (here
/// 5/s for a tenant of 1 rps) with 429 and Retry-After in the error shape.
#[tokio::test]
async fn m8_a_key_flood_beyond_the_per_key_limit_answers_429() {
    let app = spawn_app_with(|vars| {
        with_admin(vars);
        vars.insert("WAGW_KEY_RPS_MIN".into(), "5".into());
    })
    .await;
    let tenant = json!({"name": "flood", "plan": "custom", "quota": {"requests_per_second": 1}});
    let created = provision_with(&app.client, &app.address, tenant, &["*"]).await;
    let key = created.key["key"].as_str().unwrap().to_owned();
    let flood = (0..40).map(|_| me(&app.client, &app.address, &key));
    let responses = join_all(flood).await;
    let statuses: Vec<StatusCode> = responses.iter().map(|r| r.status()).collect();
    assert!(count(&statuses, 429) >= 20, "{statuses:?}");
    let refused = responses.into_iter().find(|r| r.status() == 429).unwrap();
    assert_limit_refusal(refused, 429).await;
}

fn resign(token: &str, change: impl FnOnce(&mut Value)) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    change(&mut claims);
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

async fn admin_status(app: &TestApp, token: &str) -> u16 {
    let admin = Admin {
        app,
        token: token.to_owned(),
    };
    admin.get("/admin/v1/admins").await.0
}

/// L5: a token signed with the right secret but of another issuer or audience, or of none
/// (another deployment sharing the secret), is refused.
#[tokio::test]
async fn l5_tokens_of_another_issuer_or_audience_are_refused() {
    let app = spawn_app_with(with_admin).await;
    let token = admin_token(&app.client, &app.address).await;
    assert_eq!(admin_status(&app, &resign(&token, |_| {})).await, 200);
    let forged = [
        resign(&token, |c| c["iss"] = json!("another-deployment")),
        resign(&token, |c| c["aud"] = json!("another-audience")),
        resign(&token, |c| {
            let claims = c.as_object_mut().unwrap();
            claims.remove("iss");
            claims.remove("aud");
        }),
    ];
    for token in forged {
        assert_eq!(admin_status(&app, &token).await, 401, "{token}");
    }
}

/// L5: changing the password ends every token issued before the change.
#[tokio::test]
async fn l5_a_password_change_ends_earlier_tokens() {
    let app = spawn_app_with(with_admin).await;
    let old = admin_token(&app.client, &app.address).await;
    let other_old = admin_token(&app.client, &app.address).await;
    let admin = Admin {
        app: &app,
        token: old.clone(),
    };
    let change =
        json!({"current_password": ADMIN_PASSWORD, "new_password": "a-brand-new-password"});
    let path = "/admin/v1/admins/me/password";
    assert_eq!(admin.call(Method::PUT, path, Some(change)).await.0, 204);
    let ended = eventually(Duration::from_secs(1), || async {
        admin_status(&app, &old).await == 401 && admin_status(&app, &other_old).await == 401
    })
    .await;
    assert!(
        ended,
        "a token issued before the password change still works"
    );
    let fresh = Admin::login(&app, ADMIN_USER, "a-brand-new-password").await;
    assert_eq!(admin_status(&app, &fresh.token).await, 200);
}

/// L6: a username over 64 bytes is refused with 401 before anything is written; one that
/// takes the body past the admin routes' 64 KiB limit is refused with 413 before it is read.
#[tokio::test]
async fn l6_an_oversized_username_is_refused_without_a_failure_row() {
    let app = spawn_app_with(with_admin).await;
    for (size, status) in [(65, 401), (2_000, 401), (100_000, 413)] {
        let res = login(
            &app.client,
            &app.address,
            &"a".repeat(size),
            "whatever-password",
        )
        .await;
        assert_eq!(res.status(), status, "{size} bytes");
    }
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM auth_failures WHERE length(subject) > 64")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(rows, 0);
}

/// Admin bodies each with one field the API does not know: method, path, body, the field.
fn unknown_field_bodies(tenant: &str, key_id: &str) -> Vec<(Method, String, Value, &'static str)> {
    vec![
        (
            Method::POST,
            "/admin/v1/tenants".to_owned(),
            json!({"name": "typo", "plan": "custom", "quota": {}, "qouta": {"max_sessions": 1}}),
            "qouta",
        ),
        (
            Method::POST,
            "/admin/v1/tenants".to_owned(),
            json!({"name": "typo2", "plan": "custom", "quota": {"monthly_request": 5}}),
            "monthly_request",
        ),
        (
            Method::PATCH,
            format!("/admin/v1/tenants/{tenant}"),
            json!({"stauts": "suspended"}),
            "stauts",
        ),
        (
            Method::POST,
            format!("/admin/v1/tenants/{tenant}/keys"),
            json!({"name": "k", "scopes": ["*"], "expires": "2030-01-01T00:00:00Z"}),
            "expires",
        ),
        (
            Method::POST,
            format!("/admin/v1/tenants/{tenant}/keys/{key_id}/rotate"),
            json!({"grace": 5}),
            "grace",
        ),
        (
            Method::POST,
            "/admin/v1/admins".to_owned(),
            json!({"username": "bob", "password": "bob-long-password", "role": "root"}),
            "role",
        ),
        (
            Method::PUT,
            "/admin/v1/admins/me/password".to_owned(),
            json!({"current_password": ADMIN_PASSWORD, "new_password": "x-long-password", "force": true}),
            "force",
        ),
        (
            Method::POST,
            "/admin/v1/sessions/adopt".to_owned(),
            json!({"upstream_name": "default", "tenant_id": tenant, "name": "s", "owner": 1}),
            "owner",
        ),
        (
            Method::POST,
            format!("/admin/v1/tenants/{tenant}/usage/top-up"),
            json!({"requests": 5, "reason": "x"}),
            "reason",
        ),
    ]
}

/// Admin bodies with a field the API does not know answer 400 naming it, and change nothing.
#[tokio::test]
async fn admin_bodies_with_an_unknown_field_answer_400_naming_it() {
    let app = spawn_app_with(with_admin).await;
    let created = provision(&app.client, &app.address, "acme", &["*"]).await;
    let (tenant, key_id) = (&created.tenant, created.key["id"].as_str().unwrap());
    let admin = Admin {
        app: &app,
        token: created.token.clone(),
    };
    let cases = unknown_field_bodies(tenant, key_id);
    for (method, path, body, field) in cases {
        let (status, body) = admin.call(method.clone(), &path, Some(body)).await;
        assert_eq!(status, 400, "{method} {path}");
        assert_eq!(body["statusCode"], 400);
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("`{field}`")),
            "{method} {path}: {message}"
        );
    }
    let (tenants, admins) = (app.rows("tenants").await, app.rows("admins").await);
    assert_eq!(
        (tenants, admins),
        (1, 1),
        "a refused body changed something"
    );
    // The password did not change either.
    assert_eq!(
        login(&app.client, &app.address, ADMIN_USER, ADMIN_PASSWORD)
            .await
            .status(),
        200
    );
}

/// L4: quotas stay far from the integer edge: a monthly limit over 10^12 is refused, and the
/// month's top-ups together are bounded.
#[tokio::test]
async fn l4_quota_values_and_top_up_sums_are_bounded() {
    let app = spawn_app_with(with_admin).await;
    let root = Admin::root(&app).await;
    for quota in [
        json!({"monthly_requests": 1_000_000_000_001_i64}),
        json!({"monthly_requests": i64::MAX}),
        json!({"requests_per_second": i32::MAX}),
        json!({"max_sessions": i32::MAX}),
    ] {
        let body = json!({"name": "big", "plan": "custom", "quota": quota});
        assert_eq!(root.post("/admin/v1/tenants", body).await.0, 422, "{quota}");
    }
    let tenant = json!({"name": "edge", "plan": "custom", "quota": {"monthly_requests": 1_000_000_000_000_i64}});
    let created = provision_with(&app.client, &app.address, tenant, &["*"]).await;
    let path = format!("/admin/v1/tenants/{}/usage/top-up", created.tenant);
    let mut statuses = vec![];
    for _ in 0..11 {
        let top_up = json!({"requests": 1_000_000_000});
        statuses.push(root.post(&path, top_up).await.0);
    }
    assert_eq!(statuses[..10], [200; 10], "{statuses:?}");
    assert_eq!(
        statuses[10], 400,
        "the eleventh top-up passes the month's cap"
    );
    let key = created.key["key"].as_str().unwrap();
    let usage = app
        .client
        .get(app.url("/v1/usage"))
        .header("x-api-key", key);
    let res = usage.send().await.unwrap();
    assert_eq!(res.status(), 200);
    let usage: Value = res.json().await.unwrap();
    assert_eq!(usage["limit"], json!(1_010_000_000_000_i64), "{usage}");
}
