//! The OpenAPI document: the served one, the CLI's and the checked-in file are the same bytes;
//! Swagger UI is served; every documented path answers 405 to the methods it does not declare.
//!
//! Regenerate the checked-in file after changing the API:
//! `UPDATE_OPENAPI=1 cargo test --test api openapi` (or `cargo run -- openapi > openapi/wa-gateway.json`).

use crate::helpers::spawn_app;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::path::PathBuf;

fn checked_in_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi/wa-gateway.json")
}

fn checked_in() -> String {
    let path = checked_in_path();
    if std::env::var("UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, wa_gateway::http::openapi::document_json()).unwrap();
    }
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{} cannot be read ({e}); create it with UPDATE_OPENAPI=1 cargo test --test api openapi",
            path.display()
        )
    })
}

const STALE: &str = "openapi/wa-gateway.json is stale: regenerate it with \
                     `UPDATE_OPENAPI=1 cargo test --test api openapi` and commit it";

#[tokio::test]
async fn the_served_document_is_the_checked_in_file() {
    let app = spawn_app().await;
    let file = checked_in();

    let response = app
        .client
        .get(format!("{}/openapi.json", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let served = response.text().await.unwrap();
    assert!(served == file, "{STALE}");

    let document: Value = serde_json::from_str(&served).unwrap();
    assert_eq!(document["openapi"], "3.0.3");
}

#[tokio::test]
async fn the_cli_prints_the_checked_in_file() {
    let file = checked_in();
    // No configuration at all: printing the document must not need a database or settings.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wa-gateway"))
        .arg("openapi")
        .env_clear()
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(printed == file, "{STALE}");
}

#[tokio::test]
async fn swagger_ui_is_served_at_docs_and_loads_the_document() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let bare = client
        .get(format!("{}/docs", app.address))
        .send()
        .await
        .unwrap();
    assert!(bare.status().is_redirection(), "{}", bare.status());
    assert_eq!(bare.headers()["location"], "/docs/");

    let page = client
        .get(format!("{}/docs/", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");

    // The page's script points Swagger UI at our document.
    let init = client
        .get(format!("{}/docs/swagger-initializer.js", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), StatusCode::OK);
    let init = init.text().await.unwrap();
    assert!(init.contains("\"/openapi.json\""), "{init}");

    // The bundle is vendored: served from the binary, not fetched from a CDN.
    let bundle = client
        .get(format!("{}/docs/swagger-ui-bundle.js", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(bundle.status(), StatusCode::OK);
    assert!(bundle.bytes().await.unwrap().len() > 100_000);

    let missing = client
        .get(format!("{}/docs/no-such-file.js", app.address))
        .send()
        .await
        .unwrap();
    assert_error_shape(missing, StatusCode::NOT_FOUND).await;
}

const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// A concrete URL for a documented path: each `{param}` replaced by its example.
fn concrete(path: &str, operation: &Value) -> String {
    let mut url = path.to_owned();
    for param in operation["parameters"].as_array().into_iter().flatten() {
        if param["in"] == "path" {
            let name = param["name"].as_str().unwrap();
            let example = param["example"].as_str().unwrap_or("x");
            url = url.replace(&format!("{{{name}}}"), example);
        }
    }
    assert!(
        !url.contains('{'),
        "{path}: a path parameter has no example"
    );
    url
}

async fn assert_error_shape(response: reqwest::Response, status: StatusCode) -> Value {
    let url = response.url().clone();
    assert_eq!(response.status(), status, "{url}");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{url}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["statusCode"], status.as_u16(), "{url}: {body}");
    assert_eq!(
        body["error"],
        status.canonical_reason().unwrap(),
        "{url}: {body}"
    );
    assert!(body["message"].is_string(), "{url}: {body}");
    body
}

#[tokio::test]
async fn undeclared_methods_answer_405_in_the_error_shape() {
    let app = spawn_app().await;
    let document: Value = serde_json::from_str(wa_gateway::http::openapi::document_json()).unwrap();
    let mut unserved = Vec::new();
    let mut checked = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        let declared: Vec<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let (first, operation) = item.as_object().unwrap().iter().next().unwrap();
        let url = format!("{}{}", app.address, concrete(path, operation));

        // Is the path served at all? Without credentials a served path answers 401 (or its
        // answer, when it needs none), never "no route".
        let probe = app
            .client
            .request(first.to_uppercase().parse().unwrap(), &url)
            .send()
            .await
            .unwrap();
        if probe.status() == StatusCode::NOT_FOUND {
            let body: Value = probe.json().await.unwrap();
            if body["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("no route for"))
            {
                unserved.push(path.clone());
                continue;
            }
        }

        for method in METHODS {
            if declared.contains(&method.as_str().to_lowercase().as_str()) {
                continue;
            }
            let response = app
                .client
                .request(method.clone(), &url)
                .send()
                .await
                .unwrap();
            let body = assert_error_shape(response, StatusCode::METHOD_NOT_ALLOWED).await;
            assert!(
                body["message"].as_str().unwrap().contains(method.as_str()),
                "{method} {path}: {body}"
            );
            checked += 1;
        }
    }
    assert!(
        checked > 100,
        "only {checked} undeclared methods were tried"
    );

    // Webhook routes are served by the relay (its own branch); nothing else may be missing.
    let relay: Vec<String> = wa_gateway::http::routes::endpoints::all()
        .iter()
        .filter(|e| e.handling == wa_gateway::http::routes::Handling::WebhookRelay)
        .map(|e| e.path.to_owned())
        .collect();
    for path in &unserved {
        assert!(
            relay.contains(path),
            "{path} is in the document but not served"
        );
    }

    // The document and the UI themselves.
    for path in ["/openapi.json", "/docs", "/docs/", "/docs/index.html"] {
        for method in [Method::POST, Method::PUT, Method::DELETE] {
            let response = app
                .client
                .request(method, format!("{}{path}", app.address))
                .send()
                .await
                .unwrap();
            assert_error_shape(response, StatusCode::METHOD_NOT_ALLOWED).await;
        }
    }
}
