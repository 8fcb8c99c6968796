//! Helpers shared by the admin and tenant-auth tests: an admin, tenants and keys made through
//! the real admin API.
#![allow(dead_code)]

use crate::helpers::{spawn_app_with, TestApp, Vars};
use serde_json::{json, Value};

pub use crate::helpers::{ADMIN_PASSWORD, ADMIN_USER};

pub fn with_admin(vars: &mut Vars) {
    vars.insert("WAGW_ADMIN_USER".into(), ADMIN_USER.into());
    vars.insert("WAGW_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into());
    // Unreachable upstream: no retries, so admitted calls fail fast with 502.
    vars.insert("WAGW_UPSTREAM_GET_ATTEMPTS".into(), "1".into());
}

pub async fn app() -> TestApp {
    spawn_app_with(with_admin).await
}

pub async fn login(
    client: &reqwest::Client,
    base: &str,
    user: &str,
    pw: &str,
) -> reqwest::Response {
    client
        .post(format!("{base}/admin/v1/login"))
        .json(&json!({"username": user, "password": pw}))
        .send()
        .await
        .unwrap()
}

pub async fn admin_token(client: &reqwest::Client, base: &str) -> String {
    let res = login(client, base, ADMIN_USER, ADMIN_PASSWORD).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    body["access_token"].as_str().unwrap().to_owned()
}

pub async fn admin_call(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

/// Creates a tenant (plan given, or custom unlimited) and answers its id.
pub async fn create_tenant(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    name: &str,
) -> String {
    let res = admin_call(
        client,
        base,
        token,
        reqwest::Method::POST,
        "/admin/v1/tenants",
        Some(json!({"name": name, "plan": "custom", "quota": {}})),
    )
    .await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

/// Issues a key; answers the whole 201 body (with `key` and `id`).
pub async fn create_key(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    tenant: &str,
    scopes: &[&str],
) -> Value {
    let res = admin_call(
        client,
        base,
        token,
        reqwest::Method::POST,
        &format!("/admin/v1/tenants/{tenant}/keys"),
        Some(json!({"name": "test key", "scopes": scopes})),
    )
    .await;
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

pub async fn me(client: &reqwest::Client, base: &str, key: &str) -> reqwest::Response {
    client
        .get(format!("{base}/v1/me"))
        .header("X-Api-Key", key)
        .send()
        .await
        .unwrap()
}
