//! The web console at `/console`: its page and files come from the binary with their content
//! types, a strict Content-Security-Policy and cache validators; anything else under it is a
//! 404 in the error shape, other methods 405, and no spelling of a path reaches a file outside
//! the console's own. What the browser does with them is tested in `tests/browser/console.mjs`.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};

fn error_shape(status: u16, text: &str) -> Value {
    let body: Value = serde_json::from_str(text).unwrap_or_else(|_| panic!("JSON: {text:.300}"));
    assert_eq!(body["statusCode"], status, "{body}");
    assert!(
        body["error"].is_string() && body["message"].is_string(),
        "{body}"
    );
    assert_eq!(body.as_object().unwrap().len(), 3, "{body}");
    body
}

fn header<'a>(res: &'a reqwest::Response, name: &str) -> &'a str {
    res.headers()
        .get(name)
        .map_or("", |v| v.to_str().unwrap_or_default())
}

#[tokio::test]
async fn the_page_is_html_under_a_strict_content_security_policy() {
    let app = spawn_app().await;
    // Every script is a file: no inline code for the policy to forbid.
    let inline = regex::Regex::new(r"<script(\s[^>]*)?>\s*[^<\s]").unwrap();
    for path in ["/console", "/console/"] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(header(&res, "content-type"), "text/html; charset=utf-8");
        let csp = header(&res, "content-security-policy").to_owned();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{directive} in {csp}");
        }
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(header(&res, "x-content-type-options"), "nosniff");
        assert_eq!(header(&res, "cache-control"), "no-cache");
        assert!(!header(&res, "etag").is_empty());
        let html = res.text().await.unwrap();
        assert!(html.contains(r#"<script type="module" src="/console/app.js"></script>"#));
        assert!(!inline.is_match(&html), "inline script in {html}");
        assert!(!html.contains("http://") && !html.contains("https://"));
    }
}

async fn if_none_match(app: &TestApp, file: &str, etag: &str) -> reqwest::Response {
    let url = app.url(&format!("/console/{file}"));
    let req = app.client.get(url).header("if-none-match", etag);
    req.send().await.unwrap()
}

#[tokio::test]
async fn each_file_has_its_content_type_and_revalidates_by_etag() {
    let app = spawn_app().await;
    for (file, content_type) in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("admin.js", "text/javascript; charset=utf-8"),
        ("console.css", "text/css; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
        ("index.html", "text/html; charset=utf-8"),
    ] {
        let res = app.get(&format!("/console/{file}")).await;
        assert_eq!(res.status(), 200, "{file}");
        assert_eq!(header(&res, "content-type"), content_type, "{file}");
        assert!(header(&res, "content-security-policy").contains("script-src 'self'"));
        let etag = header(&res, "etag").to_owned();
        assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
        assert!(!res.bytes().await.unwrap().is_empty());
        let again = if_none_match(&app, file, &etag).await;
        assert_eq!(again.status(), 304, "{file}");
        assert_eq!(header(&again, "etag"), etag);
        assert!(again.bytes().await.unwrap().is_empty());
        let stale = if_none_match(&app, file, "\"an-old-version\"").await;
        assert_eq!(stale.status(), 200, "{file}");
    }
}

#[tokio::test]
async fn an_unknown_file_is_404_in_the_error_shape() {
    let app = spawn_app().await;
    for path in [
        "/console/nope.js",
        "/console/APP.JS",
        "/console/app.js/x",
        "/console/app.js.map",
        "/console/index.html%00",
        "/consolex",
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 404, "{path}");
        assert_eq!(header(&res, "content-type"), "application/json", "{path}");
        error_shape(404, &res.text().await.unwrap());
    }
}

#[tokio::test]
async fn other_methods_are_405_in_the_error_shape() {
    let app = spawn_app().await;
    for path in ["/console", "/console/app.js", "/console/nope"] {
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            let res = app
                .client
                .request(method.clone(), app.url(path))
                .body("x")
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 405, "{method} {path}");
            assert_eq!(header(&res, "allow"), "GET", "{method} {path}");
            error_shape(405, &res.text().await.unwrap());
        }
    }
}

#[tokio::test]
async fn no_spelling_of_a_path_reaches_a_file_outside_the_console() {
    let app = spawn_app().await;
    for target in [
        "/console/../Cargo.toml",
        "/console/../../../../etc/passwd",
        "/console/%2e%2e/Cargo.toml",
        "/console/%2E%2E/%2E%2E/etc/passwd",
        "/console/..%2fCargo.toml",
        "/console/%2e%2e%2fCargo.toml",
        "/console/..%5cCargo.toml",
        "/console/..\\Cargo.toml",
        "/console/%252e%252e%252fCargo.toml",
        "/console//etc/passwd",
        "/console/%2fetc%2fpasswd",
        "/console/....//Cargo.toml",
        "/console/./../src/main.rs",
        "/console/%c0%ae%c0%ae/Cargo.toml",
        "/console/app.js%2f..%2f..%2fCargo.toml",
    ] {
        let (status, head, body) = app.raw("GET", target, &[]).await;
        assert!(
            status == 404 || status == 400,
            "{target} answered {status}: {head}"
        );
        for leaked in ["[package]", "root:", "fn main"] {
            assert!(
                !body.contains(leaked),
                "{target} served a file: {body:.200}"
            );
        }
        if status == 404 {
            error_shape(404, &body);
        }
    }
}

/// The console lists a tenant's sessions right after creating one: the tenant's cached list
/// is dropped when a session is recorded (it was not, so the list lagged for 30 s).
#[tokio::test]
async fn a_created_session_is_listed_at_once() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    assert_eq!(app.get_as(&tenant, "/v1/sessions").await.json, json!([]));
    let created = app
        .post_as(&tenant, "/v1/sessions", json!({"name": "phone"}))
        .await;
    assert_eq!(created.status, 201, "{}", created.json);
    let listed = app.get_as(&tenant, "/v1/sessions").await.json;
    assert_eq!(listed[0]["name"], "phone", "{listed}");
}

/// The organisation view shows the fair queue in front of the per-second budget.
#[tokio::test]
async fn the_upstream_standing_reports_the_fair_queue() {
    let app = spawn_app_with(|vars| {
        vars.insert("WAGW_UPSTREAM_RPS".into(), "5".into());
        vars.insert("WAGW_UPSTREAM_QUEUE_WAIT_MS".into(), "1500".into());
    })
    .await;
    let (status, standing) = app.admin(Method::GET, "/admin/v1/upstream", None).await;
    assert_eq!(status, 200, "{standing}");
    assert_eq!(standing["rps"], 5);
    assert_eq!(
        standing["queue"],
        json!({"waiting_calls": 0, "waiting_tenants": 0, "max_wait_ms": 1500})
    );
    let unlimited = spawn_app().await;
    let (_, standing) = unlimited
        .admin(Method::GET, "/admin/v1/upstream", None)
        .await;
    assert_eq!(standing["queue"], Value::Null, "{standing}");
}
