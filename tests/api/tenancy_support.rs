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

/// Creates a custom tenant with no limits and answers its id.
pub async fn create_tenant(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    name: &str,
) -> String {
    create_tenant_with(client, base, token, unlimited(name)).await
}

fn unlimited(name: &str) -> Value {
    json!({"name": name, "plan": "custom", "quota": {}})
}

/// Creates a tenant with `body` (of `POST /admin/v1/tenants`) and answers its id.
pub async fn create_tenant_with(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    body: Value,
) -> String {
    let res = admin_call(
        client,
        base,
        token,
        reqwest::Method::POST,
        "/admin/v1/tenants",
        Some(body),
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

/// What most tests start from: the bootstrap admin's token, a tenant and a key of its.
pub struct Provisioned {
    pub token: String,
    /// The tenant's id.
    pub tenant: String,
    /// The key's whole 201 body (with `key` and `id`).
    pub key: Value,
}

/// Logs in at `base` as the bootstrap admin, creates a custom tenant with no limits named
/// `name` and issues it a key of `scopes`.
pub async fn provision(
    client: &reqwest::Client,
    base: &str,
    name: &str,
    scopes: &[&str],
) -> Provisioned {
    provision_with(client, base, unlimited(name), scopes).await
}

/// Logs in at `base` as the bootstrap admin, creates a tenant with `tenant` (the body of
/// `POST /admin/v1/tenants`) and issues it a key of `scopes`.
pub async fn provision_with(
    client: &reqwest::Client,
    base: &str,
    tenant: Value,
    scopes: &[&str],
) -> Provisioned {
    let token = admin_token(client, base).await;
    let tenant = create_tenant_with(client, base, &token, tenant).await;
    let key = create_key(client, base, &token, &tenant, scopes).await;
    Provisioned { token, tenant, key }
}

pub async fn me(client: &reqwest::Client, base: &str, key: &str) -> reqwest::Response {
    client
        .get(format!("{base}/v1/me"))
        .header("X-Api-Key", key)
        .send()
        .await
        .unwrap()
}
