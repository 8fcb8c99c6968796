//! Typed calls on the gateway's public API: the bootstrap admin, tenants and keys made through
//! the admin API, a tenant's calls and what they answered.

use super::{spawn_app_with, TestApp, Vars, ADMIN_PASSWORD, ADMIN_USER};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};

/// A tenant made through the admin API, with a key of the given scopes.
#[derive(Debug, Clone)]
pub struct TestTenant {
    pub id: String,
    pub name: String,
    pub key: String,
}

/// What one call answered: the status, the JSON body (`Null` when there is none) and headers.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub json: Value,
    pub headers: HeaderMap,
}

impl Answer {
    pub async fn read(res: reqwest::Response) -> Self {
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        Self {
            status,
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
            headers,
        }
    }

    /// The error shape's `message` (empty when there is none).
    pub fn message(&self) -> &str {
        self.json["message"].as_str().unwrap_or_default()
    }

    /// `Retry-After` in whole seconds.
    pub fn retry_after(&self) -> Option<u64> {
        self.headers.get("retry-after").map(|v| {
            v.to_str()
                .unwrap()
                .parse()
                .expect("Retry-After in whole seconds")
        })
    }

    /// A header as text (empty when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or("", |v| v.to_str().unwrap_or_default())
    }
}

impl TestApp {
    /// A request sent byte for byte as written (HTTP clients resolve dot segments and
    /// re-encode paths themselves): answers the status, the head and the body as text.
    pub async fn raw(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
    ) -> (u16, String, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = format!("127.0.0.1:{}", self.port);
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let mut request = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("Connection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        let text = String::from_utf8_lossy(&answer).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        (status, head.to_owned(), body.to_owned())
    }
}

/// Sends `req` and reads what it answered.
pub async fn answer(req: reqwest::RequestBuilder) -> Answer {
    Answer::read(req.send().await.expect("the request was sent")).await
}

impl TestApp {
    /// An admin access token (the bootstrap admin of `base_vars`), logged in once per gateway.
    pub async fn admin_token(&self) -> String {
        self.admin_token
            .get_or_init(|| admin_token(&self.client, &self.address))
            .await
            .clone()
    }

    /// An admin call; answers the status and the JSON body (`Null` when there is none).
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let a = self.admin_call(method, path, body).await;
        (a.status, a.json)
    }

    /// An admin call and everything it answered.
    pub async fn admin_call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let token = self.admin_token().await;
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        answer(req).await
    }

    /// A tenant created with `tenant` as the body of `POST /admin/v1/tenants` (`name` filled
    /// in when absent), with a key of `scopes`.
    pub async fn tenant_with(&self, mut tenant: Value, scopes: &[&str]) -> TestTenant {
        if tenant.get("name").is_none() {
            tenant["name"] = json!(unique_name());
        }
        let (status, created) = self
            .admin(Method::POST, "/admin/v1/tenants", Some(tenant))
            .await;
        assert_eq!(status, 201, "creating a tenant: {created}");
        let id = created["id"].as_str().unwrap().to_owned();
        let (status, key) = self
            .admin(
                Method::POST,
                &format!("/admin/v1/tenants/{id}/keys"),
                Some(json!({"name": "test", "scopes": scopes})),
            )
            .await;
        assert_eq!(status, 201, "creating a key: {key}");
        TestTenant {
            id,
            name: created["name"].as_str().unwrap().to_owned(),
            key: key["key"].as_str().unwrap().to_owned(),
        }
    }

    /// A tenant with no limits and a key of every scope.
    pub async fn tenant(&self) -> TestTenant {
        self.tenant_with(json!({"plan": "custom", "quota": {}}), &["*"])
            .await
    }

    /// A tenant of `quota` (the `quota` object of a custom plan) with a key of every scope.
    pub async fn tenant_of(&self, quota: Value) -> TestTenant {
        self.tenant_with(json!({"plan": "custom", "quota": quota}), &["*"])
            .await
    }

    /// A request of the tenant's, authenticated with its key.
    pub fn call(&self, tenant: &TestTenant, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("x-api-key", &tenant.key)
    }

    pub async fn tenant_post(
        &self,
        tenant: &TestTenant,
        path: &str,
        body: Value,
    ) -> reqwest::Response {
        self.call(tenant, Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn tenant_get(&self, tenant: &TestTenant, path: &str) -> reqwest::Response {
        self.call(tenant, Method::GET, path).send().await.unwrap()
    }

    /// A tenant's call with a JSON body, and everything it answered.
    pub async fn post_as(&self, tenant: &TestTenant, path: &str, body: Value) -> Answer {
        answer(self.call(tenant, Method::POST, path).json(&body)).await
    }

    /// A tenant's `GET`, and everything it answered.
    pub async fn get_as(&self, tenant: &TestTenant, path: &str) -> Answer {
        answer(self.call(tenant, Method::GET, path)).await
    }

    /// The upstream's name for the tenant's session.
    pub async fn upstream_name(&self, tenant: &TestTenant, session: &str) -> String {
        sqlx::query_scalar(
            "SELECT upstream_name FROM sessions WHERE tenant_id = $1::uuid AND name = $2",
        )
        .bind(&tenant.id)
        .bind(session)
        .fetch_one(&self.pool)
        .await
        .expect("the tenant owns the session")
    }

    /// Creates the tenant's session `name`, starts it and completes its scan through the
    /// simulator's control API: it is WORKING. Answers its upstream name.
    pub async fn working_session(&self, tenant: &TestTenant, name: &str) -> String {
        let created = self
            .post_as(tenant, "/v1/sessions", json!({"name": name}))
            .await;
        assert_eq!(created.status, 201, "creating session {name}: {created:?}");
        let upstream = self.upstream_name(tenant, name).await;
        let res = self
            .sim_post(&format!("/_sim/sessions/{upstream}/scan"), json!({}))
            .await;
        assert!(res.status().is_success(), "scanning {name}");
        upstream
    }

    /// How much of the tenant's monthly quota the gateways hold leased (spent or not).
    pub async fn leased(&self, tenant: &TestTenant) -> i64 {
        leased(&self.pool, tenant).await
    }
}

/// How much of the tenant's monthly quota the gateways on `pool`'s database hold leased.
pub async fn leased(pool: &sqlx::PgPool, tenant: &TestTenant) -> i64 {
    sqlx::query_scalar(
        "SELECT COALESCE(sum(leased), 0)::bigint FROM quota_months WHERE subject = $1",
    )
    .bind(&tenant.id)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// A tenant name nobody else in the test uses.
pub fn unique_name() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

// ---- Calls on any gateway (an in-process one, a replica, the real binary) by its base URL ----

/// `GET /v1/sessions` as the key's tenant at `base`: a call that is forwarded.
pub async fn list_sessions(client: &reqwest::Client, base: &str, key: &str) -> Answer {
    answer(
        client
            .get(format!("{base}/v1/sessions"))
            .header("x-api-key", key),
    )
    .await
}

/// A call the gateway refuses itself (malformed JSON): it authenticates the key (warming that
/// gateway's key cache) and must count nothing.
pub async fn invalid_call(client: &reqwest::Client, base: &str, key: &str) -> Answer {
    let a = answer(
        client
            .post(format!("{base}/v1/sendText"))
            .header("x-api-key", key)
            .header("content-type", "application/json")
            .body("{"),
    )
    .await;
    assert_eq!(a.status, 400, "{a:?}");
    a
}

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
    assert_eq!(res.status(), 200, "admin login");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    body["access_token"].as_str().unwrap().to_owned()
}

pub async fn admin_call(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    method: Method,
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
        Method::POST,
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
        Method::POST,
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

impl Provisioned {
    /// The tenant's key.
    pub fn api_key(&self) -> &str {
        self.key["key"].as_str().unwrap()
    }
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
