//! What the gateway refuses itself, without spending an upstream call: session names, the
//! tenant's session limit, bodies the upstream would reject, wrong types and sizes; and the
//! check-exists cache.

use crate::helpers::{spawn_app, spawn_app_with};
use reqwest::Method;
use serde_json::{json, Value};

async fn error_of(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["statusCode"], status, "the error shape: {body}");
    assert!(
        body["error"].is_string() && body["message"].is_string(),
        "{body}"
    );
    (status, body)
}

#[tokio::test]
async fn session_names_are_checked_at_creation_without_an_upstream_call() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    app.clear_sim_log().await;
    for bad in [
        "start",
        "stop",
        "logout",
        "",
        "a b",
        "ü",
        "a/b",
        &"x".repeat(65),
    ] {
        let res = app
            .tenant_post(&tenant, "/v1/sessions", json!({"name": bad}))
            .await;
        let (status, body) = error_of(res).await;
        assert_eq!(status, 400, "{bad:?}: {body}");
    }
    let res = app
        .tenant_post(&tenant, "/v1/sessions", json!({"name": 5}))
        .await;
    assert_eq!(res.status(), 400);
    assert!(
        app.sim_log().await.is_empty(),
        "refused without an upstream call"
    );

    let longest = "A-z_9".repeat(12) + "abcd";
    assert_eq!(longest.len(), 64);
    for good in [longest.as_str(), "a", "Bot_1-x"] {
        let res = app
            .tenant_post(&tenant, "/v1/sessions", json!({"name": good}))
            .await;
        assert_eq!(res.status(), 201, "{good}");
    }
}

#[tokio::test]
async fn no_body_creates_the_default_session_sent_upstream_as_typed_json() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    app.clear_sim_log().await;
    // No body at all: the hosted API's default name.
    let res = app
        .call(&tenant, Method::POST, "/v1/sessions")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let info: Value = res.json().await.unwrap();
    assert_eq!(info["name"], "default");
    let upstream = app.upstream_name(&tenant, "default").await;
    let log = crate::helpers::without_registrations(app.sim_log().await);
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["headers"]["content-type"], "application/json");
    let sent: Value = serde_json::from_str(log[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(sent, json!({"name": upstream}));
    let again = app
        .tenant_post(&tenant, "/v1/sessions", json!({"name": "default"}))
        .await;
    assert_eq!(again.status(), 409);
}

#[tokio::test]
async fn start_stop_and_logout_are_fixed_routes_not_sessions() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let res = app
        .tenant_post(&tenant, "/v1/sessions", json!({"name": "a"}))
        .await;
    assert_eq!(res.status(), 201);
    // The fixed routes are not `/v1/sessions/{session}` (which would answer 405). The
    // deprecated stop and logout answer 201 with no body (ENGINE.md §2 rows 6 and 9); start
    // refuses a running session with 422, so it comes after the stop.
    for action in ["stop", "start", "logout"] {
        let res = app
            .tenant_post(
                &tenant,
                &format!("/v1/sessions/{action}"),
                json!({"name": "a"}),
            )
            .await;
        assert_eq!(res.status(), 201, "{action}");
        let text = res.text().await.unwrap();
        if action == "start" {
            let info: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(info["name"], "a", "{action}");
        } else {
            assert_eq!(text, "", "{action}");
        }
    }
    // The logout deleted the session upstream; the gateway forgot it too.
    let res = app.tenant_get(&tenant, "/v1/sessions/a").await;
    assert_eq!(res.status(), 404);
    let log = app.sim_log().await;
    let paths: Vec<&str> = log.iter().filter_map(|c| c["path"].as_str()).collect();
    assert!(paths.contains(&"/v1/sessions/start") && paths.contains(&"/v1/sessions/logout"));
}

#[tokio::test]
async fn max_sessions_is_429_naming_the_limit_and_a_deletion_frees_the_slot() {
    let app = spawn_app().await;
    let tenant = app
        .tenant_with(
            json!({"plan": "custom", "quota": {"max_sessions": 2}}),
            &["*"],
        )
        .await;
    for name in ["one", "two"] {
        let res = app
            .tenant_post(&tenant, "/v1/sessions", json!({"name": name}))
            .await;
        assert_eq!(res.status(), 201);
    }
    app.clear_sim_log().await;
    let res = app
        .tenant_post(&tenant, "/v1/sessions", json!({"name": "three"}))
        .await;
    let (status, body) = error_of(res).await;
    assert_eq!(status, 429);
    assert!(body["message"].as_str().unwrap().contains('2'), "{body}");
    assert!(app.sim_log().await.is_empty());

    let res = app
        .call(&tenant, Method::DELETE, "/v1/sessions/one")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .tenant_post(&tenant, "/v1/sessions", json!({"name": "three"}))
        .await;
    assert_eq!(res.status(), 201);
}

fn image(file: Value) -> Value {
    json!({"chatId": "1234567890", "file": file})
}

fn location(lat: Value, lon: Value) -> Value {
    json!({"chatId": "1234567890", "latitude": lat, "longitude": lon})
}

/// A body the upstream would reject: the path, the body, the field the 400 names.
type Rejected = (&'static str, Value, &'static str);

fn rejected_texts() -> Vec<Rejected> {
    vec![
        ("/v1/sendText", json!({"text": "hi"}), "chatId"),
        (
            "/v1/sendText",
            json!({"chatId": 1234567890, "text": "hi"}),
            "chatId",
        ),
        (
            "/v1/sendText",
            json!({"chatId": "not a chat", "text": "hi"}),
            "chatId",
        ),
        ("/v1/sendText", json!({"chatId": "1234567890"}), "text"),
        (
            "/v1/sendText",
            json!({"chatId": "1234567890", "text": 7}),
            "text",
        ),
        (
            "/v1/sendText",
            json!({"chatId": "1234567890", "text": "  "}),
            "text",
        ),
        (
            "/v1/sendPoll",
            json!({"chatId": "1234567890", "poll": {"name": "q", "options": []}}),
            "poll.options",
        ),
        (
            "/v1/sendPoll",
            json!({"chatId": "1234567890", "poll": {"name": "q"}}),
            "poll.options",
        ),
        ("/v1/reply", json!({"chatId": "1234567890"}), "text"),
        (
            "/v1/sendText",
            json!({"chatId": "1234567890@g.us", "text": "hi", "mentions": ["everyone"]}),
            "mentions[0]",
        ),
        (
            "/v1/sendText",
            json!({"chatId": "1234567890@g.us", "text": "hi", "mentions": "all"}),
            "mentions",
        ),
        (
            "/v1/sendText",
            json!({"chatId": "status@c.us", "text": "hi"}),
            "chatId",
        ),
        (
            "/v1/sendImage",
            image(json!({"data": "aGVs bG8=x", "mimetype": "image/png"})),
            "file.data",
        ),
        ("/v1/sendText", json!(["not", "an", "object"]), "object"),
    ]
}

fn rejected_media_and_locations() -> Vec<Rejected> {
    vec![
        ("/v1/sendImage", json!({"chatId": "1234567890"}), "file"),
        (
            "/v1/sendImage",
            image(json!("https://x.test/a.png")),
            "file",
        ),
        (
            "/v1/sendImage",
            image(json!({"mimetype": "image/png"})),
            "file.url",
        ),
        (
            "/v1/sendFile",
            image(json!({"url": "ftp://x.test/a.pdf", "mimetype": "application/pdf"})),
            "file.url",
        ),
        (
            "/v1/sendImage",
            image(json!({"data": "not base64!", "mimetype": "image/png"})),
            "file.data",
        ),
        (
            "/v1/sendVideo",
            image(json!({"url": "https://x.test/a.mp4"})),
            "file.mimetype",
        ),
        (
            "/v1/sendLocation",
            location(json!(91), json!(0)),
            "latitude",
        ),
        (
            "/v1/sendLocation",
            location(json!(-90.5), json!(0)),
            "latitude",
        ),
        (
            "/v1/sendLocation",
            location(json!(10), json!(180.01)),
            "longitude",
        ),
        (
            "/v1/sendLocation",
            location(json!("10"), json!(0)),
            "latitude",
        ),
        (
            "/v1/sendLocation",
            json!({"chatId": "1234567890", "latitude": 1}),
            "longitude",
        ),
    ]
}

#[tokio::test]
async fn bodies_the_upstream_would_reject_are_400_naming_the_field_without_an_upstream_call() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    app.working_session(&tenant, "default").await;
    app.clear_sim_log().await;
    for (path, body, field) in rejected_texts()
        .into_iter()
        .chain(rejected_media_and_locations())
    {
        let res = app.tenant_post(&tenant, path, body.clone()).await;
        let (status, error) = error_of(res).await;
        assert_eq!(status, 400, "{path} {body}: {error}");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains(field),
            "{path} {body}: `{message}` names {field}"
        );
    }
    assert_eq!(app.sim_log().await, Vec::<Value>::new(), "no upstream call");

    // The same sends, valid, do reach it.
    let res = app
        .tenant_post(
            &tenant,
            "/v1/sendLocation",
            location(json!(-90), json!(180)),
        )
        .await;
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn malformed_json_a_wrong_media_type_or_a_missing_query_never_reach_the_upstream() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    app.working_session(&tenant, "default").await;
    app.clear_sim_log().await;
    let malformed = app
        .call(&tenant, Method::POST, "/v1/sendText")
        .header("content-type", "application/json")
        .body(r#"{"chatId": "1234567890", "text": "#)
        .send()
        .await
        .unwrap();
    let (status, error) = error_of(malformed).await;
    assert_eq!(status, 400);
    assert!(
        error["message"].as_str().unwrap().contains("JSON"),
        "{error}"
    );

    let wrong_type = app
        .call(&tenant, Method::POST, "/v1/sendText")
        .header("content-type", "text/plain")
        .body(r#"{"chatId": "1234567890", "text": "hi"}"#)
        .send()
        .await
        .unwrap();
    let (status, _) = error_of(wrong_type).await;
    assert_eq!(status, 415);

    let bad_query = app.tenant_get(&tenant, "/v1/contacts/check-exists").await;
    let (status, error) = error_of(bad_query).await;
    assert_eq!(status, 400);
    assert!(error["message"].as_str().unwrap().contains("phone"));

    assert_eq!(app.sim_log().await, Vec::<Value>::new(), "no upstream call");
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = spawn_app_with(|vars| {
        vars.insert("WAGW_MAX_BODY_BYTES".into(), "2048".into());
    })
    .await;
    let tenant = app.tenant().await;
    app.working_session(&tenant, "default").await;
    app.clear_sim_log().await;
    let big = json!({"chatId": "1234567890", "text": "x".repeat(4096)});
    let res = app.tenant_post(&tenant, "/v1/sendText", big).await;
    let (status, _) = error_of(res).await;
    assert_eq!(status, 413);
    assert!(app.sim_log().await.is_empty());
    let small = json!({"chatId": "1234567890", "text": "x".repeat(1024)});
    assert_eq!(
        app.tenant_post(&tenant, "/v1/sendText", small)
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn check_exists_answers_are_cached_per_session() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let upstream = app.working_session(&tenant, "default").await;
    app.working_session(&tenant, "other").await;
    app.clear_sim_log().await;
    let ask = |query: &'static str| {
        let app = &app;
        let tenant = &tenant;
        async move {
            let res = app
                .tenant_get(tenant, &format!("/v1/contacts/check-exists?{query}"))
                .await;
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.unwrap()
        }
    };
    let first = ask("phone=1234567890").await;
    assert_eq!(first["numberExists"], true);
    let second = ask("phone=1234567890").await;
    assert_eq!(first, second);
    let log = app.sim_log().await;
    assert_eq!(log.len(), 1, "the second call is served from cache");
    assert!(log[0]["query"].as_str().unwrap().contains(&upstream));
    // Another number, or another session, is another question.
    assert_eq!(ask("phone=1234567000").await["numberExists"], false);
    ask("phone=1234567890&session=other").await;
    assert_eq!(app.sim_log().await.len(), 3);
}

/// PostgreSQL cannot store a NUL character: text carrying one, in a query filter or a JSON
/// body, is a 400 in the error shape (schemathesis found the audit filter answering 500).
#[tokio::test]
async fn text_with_a_nul_character_is_a_400_wherever_it_comes_in() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let res = app
        .client
        .get(format!(
            "{}/admin/v1/audit?action=quota%00reset",
            app.address
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(res).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("NUL"), "{body}");

    let res = app
        .client
        .post(format!("{}/admin/v1/login", app.address))
        .json(&json!({"username": "ro\u{0}ot", "password": "whatever"}))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(res).await;
    assert_eq!(status, 400, "{body}");
}
