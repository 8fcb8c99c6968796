//! Send pacing (issue 17 part 1): a paced session's sends wait their turn in arrival order,
//! one at a time, across replicas, and reach the upstream at least the interval apart; a send
//! that would wait too long is refused at once (429, `Retry-After`, nothing sent, no quota
//! spent); the per-minute and new-chat limits hold; typing and read receipts are never
//! paced; a tenant cannot loosen its admin's ceiling; an unpaced session pays nothing. The
//! hostile cases: values that are not whole numbers within bounds, unknown fields, another
//! tenant's session, a test key's session, spellings of one number as several chats.

use crate::helpers::{
    answer, eventually, message_subscription, spawn_app, spawn_app_with, spawn_replica, Answer,
    Receiver, RelayedSession, TestApp, TestTenant,
};
use crate::test_keys::{self_scanned_session, test_key_of};
use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(10);

/// A gateway that waits at most 1 s for a send's turn.
async fn impatient_app() -> TestApp {
    spawn_app_with(|vars| {
        vars.insert("WAGW_PACING_MAX_WAIT_MS".into(), "1000".into());
    })
    .await
}

fn pacing_path(session: &str) -> String {
    format!("/v1/sessions/{session}/pacing")
}

/// `PUT /v1/sessions/{session}/pacing` with `body`, and what it answered.
async fn put_pacing(app: &TestApp, tenant: &TestTenant, session: &str, body: Value) -> Answer {
    answer(
        app.call(tenant, Method::PUT, &pacing_path(session))
            .json(&body),
    )
    .await
}

/// Sets the session's policy, which must be accepted.
async fn pace(app: &TestApp, tenant: &TestTenant, session: &str, policy: Value) {
    let set = put_pacing(app, tenant, session, policy).await;
    assert_eq!(set.status, 200, "setting the pacing: {set:?}");
}

async fn pacing_of(app: &TestApp, tenant: &TestTenant, session: &str) -> Answer {
    app.get_as(tenant, &pacing_path(session)).await
}

fn text_to(session: &str, chat: &str, text: &str) -> Value {
    json!({"session": session, "chatId": chat, "text": text})
}

async fn send(app: &TestApp, tenant: &TestTenant, session: &str, chat: &str) -> Answer {
    app.post_as(tenant, "/v1/sendText", text_to(session, chat, "hi"))
        .await
}

/// The texts and arrival times of the `sendText` calls the upstream received, oldest first.
async fn upstream_sends(app: &TestApp) -> Vec<(String, DateTime<Utc>)> {
    let mut log = app.sim_log().await;
    log.retain(|e| e["path"] == "/v1/sendText");
    log.sort_by_key(|e| e["seq"].as_u64());
    log.iter()
        .map(|e| {
            let body: Value = serde_json::from_str(e["body"].as_str().unwrap()).unwrap();
            let at = DateTime::parse_from_rfc3339(e["time"].as_str().unwrap()).unwrap();
            (body["text"].as_str().unwrap().to_owned(), at.to_utc())
        })
        .collect()
}

fn assert_refused(a: &Answer, limit: &str) {
    assert_eq!(a.status, 429, "{a:?}");
    assert!(a.message().starts_with("pacing: "), "{a:?}");
    assert!(
        a.message().contains(limit),
        "the message names {limit}: {a:?}"
    );
    assert!(a.retry_after().is_some_and(|s| s >= 1), "{a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_sends_on_two_replicas_reach_the_upstream_in_order_300_ms_apart() {
    let a = spawn_app().await;
    let b = spawn_replica(&a).await;
    let tenant = a.tenant().await;
    a.working_session(&tenant, "paced").await;
    pace(&a, &tenant, "paced", json!({"minIntervalMs": 300})).await;
    a.clear_sim_log().await;

    let mut sends = Vec::new();
    for i in 0..10usize {
        let replica = if i % 2 == 0 { &a } else { &b };
        let body = text_to("paced", "123456789", &format!("send {i}"));
        let req = replica
            .call(&tenant, Method::POST, "/v1/sendText")
            .json(&body);
        sends.push(tokio::spawn(answer(req)));
        // The next send arrives once this one holds its ticket: the order of arrival is known,
        // and all ten are in the line together.
        let in_line = eventually(PATIENCE, || async {
            let line = &pacing_of(&a, &tenant, "paced").await.json["line"];
            let reserved =
                line["waiting"].as_i64().unwrap() + line["sentLastHour"].as_i64().unwrap();
            reserved == i as i64 + 1
        })
        .await;
        assert!(in_line, "send {i} took its ticket");
    }
    let answers: Vec<Answer> = join_all(sends)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(a.status, 201, "send {i}: {a:?}");
        assert!(!a.header("x-pacing-wait-ms").is_empty(), "send {i}: {a:?}");
    }
    let waits: Vec<u64> = answers
        .iter()
        .map(|a| a.header("x-pacing-wait-ms").parse().unwrap())
        .collect();
    assert!(waits[9] >= 300, "the last send waited its turn: {waits:?}");

    let seen = upstream_sends(&a).await;
    let texts: Vec<&str> = seen.iter().map(|(text, _)| text.as_str()).collect();
    let expected: Vec<String> = (0..10).map(|i| format!("send {i}")).collect();
    assert_eq!(texts, expected, "the upstream saw them in arrival order");
    for pair in seen.windows(2) {
        let gap = pair[1].1 - pair[0].1;
        assert!(
            gap >= chrono::TimeDelta::milliseconds(300),
            "{} reached the upstream {} ms after {}",
            pair[1].0,
            gap.num_milliseconds(),
            pair[0].0
        );
    }
}

#[tokio::test]
async fn a_send_past_the_maximum_wait_is_refused_at_once_forwarding_nothing_spending_nothing() {
    let app = impatient_app().await;
    let tenant = app.tenant_of(json!({"monthly_requests": 100})).await;
    app.working_session(&tenant, "paced").await;
    pace(&app, &tenant, "paced", json!({"minIntervalMs": 5000})).await;
    app.clear_sim_log().await;
    let used_before = app.get_as(&tenant, "/v1/usage").await.json["used"].clone();

    let first = send(&app, &tenant, "paced", "123456789").await;
    assert_eq!(first.status, 201, "{first:?}");
    let started = std::time::Instant::now();
    let second = app
        .post_as(
            &tenant,
            "/v1/sendText",
            text_to("paced", "123456789", "too soon"),
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refused at once, not after waiting"
    );
    assert_refused(&second, "minIntervalMs 5000");
    let retry = second.retry_after().unwrap();
    assert!(
        (4..=5).contains(&retry),
        "a retry in {retry} s would go at once: {second:?}"
    );
    assert!(
        second.message().contains("WAGW_PACING_MAX_WAIT_MS"),
        "{second:?}"
    );

    assert_eq!(
        app.sim_count("POST", "/v1/sendText").await,
        1,
        "nothing forwarded"
    );
    let usage = app.get_as(&tenant, "/v1/usage").await.json;
    assert_eq!(
        usage["used"].as_i64().unwrap(),
        used_before.as_i64().unwrap() + 1,
        "only the first send counts: {usage}"
    );
    assert!(
        usage["refusals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["reason"] == "pacing" && r["refusals"] == 1),
        "{usage}"
    );
    let pacing = &usage["pacing"][0];
    assert_eq!(pacing["session"], "paced", "{usage}");
    assert_eq!(pacing["mode"], "live");
    assert_eq!(pacing["sends"], 1);
    assert_eq!(pacing["refusals"], 1);
    let line = &pacing_of(&app, &tenant, "paced").await.json["line"];
    assert_eq!(
        line["waiting"], 0,
        "the refusal holds no place in the line: {line}"
    );
}

#[tokio::test]
async fn a_caller_that_gives_up_waiting_and_retries_with_its_idempotency_key_sends_once() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    app.working_session(&tenant, "s").await;
    pace(&app, &tenant, "s", json!({"minIntervalMs": 2000})).await;
    app.clear_sim_log().await;
    assert_eq!(send(&app, &tenant, "s", "123456789").await.status, 201);
    let queued = || {
        app.call(&tenant, Method::POST, "/v1/sendText")
            .header("idempotency-key", "order-42")
            .json(&text_to("s", "123456789", "order 42"))
    };
    // A client whose timeout is shorter than the wait: the gateway keeps the send in line
    // (HTTP/1 gives no sign that the caller left), so the retry must not queue a second one.
    let impatient = queued().timeout(Duration::from_millis(300)).send().await;
    assert!(impatient.is_err(), "the caller gave up before its turn");
    let retry = answer(queued()).await;
    assert_eq!(retry.status, 201, "{retry:?}");
    assert_eq!(retry.header("idempotent-replayed"), "true", "{retry:?}");
    let texts: Vec<String> = upstream_sends(&app)
        .await
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(texts, ["hi", "order 42"], "sent once");
}

#[tokio::test]
async fn max_per_minute_lets_that_many_through_then_refuses_until_the_minute_is_over() {
    let app = impatient_app().await;
    let tenant = app.tenant().await;
    app.working_session(&tenant, "s").await;
    pace(&app, &tenant, "s", json!({"maxPerMinute": 2})).await;
    for i in 0..2 {
        let a = send(&app, &tenant, "s", "123456789").await;
        assert_eq!(a.status, 201, "send {i}: {a:?}");
    }
    let third = send(&app, &tenant, "s", "123456789").await;
    assert_refused(&third, "maxPerMinute");
    let retry = third.retry_after().unwrap();
    assert!((50..=60).contains(&retry), "the minute frees in {retry} s");
    assert_eq!(app.sim_count("POST", "/v1/sendText").await, 2);
    let line = &pacing_of(&app, &tenant, "s").await.json["line"];
    assert_eq!(line["sentLastMinute"], 2, "{line}");
}

#[tokio::test]
async fn new_chats_are_limited_per_day_while_known_and_heard_from_chats_are_not() {
    let app = impatient_app().await;
    let receiver = Receiver::start().await;
    let hook = message_subscription(&receiver.url);
    let s = RelayedSession::start(&app, &[hook]).await;
    let (tenant, name) = (&s.tenant, s.name.as_str());
    // 1234567890 writes to the session: a chat it has heard from.
    let payload = json!({"id": "false_1234567890@c.us_AAA", "timestamp": 1741249702,
        "from": "1234567890@c.us", "fromMe": false, "to": "71111111111@c.us", "body": "hello"});
    s.deliver(&app.address, &s.event("evt_heard", "message", payload))
        .await;
    pace(&app, tenant, name, json!({"maxNewChatsPerDay": 1})).await;

    assert_eq!(send(&app, tenant, name, "5550001").await.status, 201);
    // The same number however it is spelled: not a second new chat.
    for spelling in ["+5550001", "5550001@c.us", "5550001@s.whatsapp.net"] {
        let a = send(&app, tenant, name, spelling).await;
        assert_eq!(a.status, 201, "{spelling}: {a:?}");
    }
    let new = send(&app, tenant, name, "5550002").await;
    assert_refused(&new, "maxNewChatsPerDay");
    assert!(new.message().contains("5550002@c.us"), "{new:?}");
    assert!(new.retry_after().unwrap() > 86_000, "{new:?}");
    let heard = send(&app, tenant, name, "1234567890").await;
    assert_eq!(
        heard.status, 201,
        "a chat the session heard from is not new: {heard:?}"
    );
    let line = &pacing_of(&app, tenant, name).await.json["line"];
    assert_eq!(line["newChatsLastDay"], 1, "{line}");

    // Reply only: no new chat at all, known ones still.
    pace(&app, tenant, name, json!({"maxNewChatsPerDay": 0})).await;
    assert_refused(&send(&app, tenant, name, "5550003").await, "reply only");
    assert_eq!(send(&app, tenant, name, "5550001").await.status, 201);
}

#[tokio::test]
async fn typing_and_read_receipts_are_not_paced() {
    let app = impatient_app().await;
    let tenant = app.tenant().await;
    app.working_session(&tenant, "s").await;
    pace(&app, &tenant, "s", json!({"minIntervalMs": 5000})).await;
    assert_eq!(send(&app, &tenant, "s", "123456789").await.status, 201);
    let chat = json!({"session": "s", "chatId": "123456789"});
    for path in ["/v1/startTyping", "/v1/stopTyping", "/v1/sendSeen"] {
        let a = app.post_as(&tenant, path, chat.clone()).await;
        assert_eq!(a.status, 201, "{path}: {a:?}");
        assert_eq!(a.header("x-pacing-wait-ms"), "", "{path} did not queue");
    }
    // The send line was not moved by them: a send is still too soon.
    assert_refused(
        &send(&app, &tenant, "s", "123456789").await,
        "minIntervalMs",
    );
}

/// An admin's `PATCH /admin/v1/tenants/{id}` with `pacing`.
async fn patch_pacing(app: &TestApp, tenant: &TestTenant, pacing: Value) -> (u16, Value) {
    app.admin(
        Method::PATCH,
        &format!("/admin/v1/tenants/{}", tenant.id),
        Some(json!({ "pacing": pacing })),
    )
    .await
}

#[tokio::test]
async fn a_tenant_cannot_loosen_its_ceiling_and_the_default_paces_sessions_without_a_policy() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    app.working_session(&tenant, "s").await;
    let ceiling = json!({"minIntervalMs": 1000, "maxPerHour": 60});
    let (status, body) = patch_pacing(&app, &tenant, json!({ "ceiling": ceiling })).await;
    assert_eq!(status, 200, "{body}");
    let admin_path = format!("/admin/v1/tenants/{}/pacing", tenant.id);
    let (status, pacing) = app.admin(Method::GET, &admin_path, None).await;
    assert_eq!(status, 200);
    assert_eq!(pacing["default"], Value::Null);
    assert_eq!(pacing["ceiling"]["minIntervalMs"], 1000, "{pacing}");

    for (looser, field) in [
        (json!({"minIntervalMs": 500}), "minIntervalMs"),
        (
            json!({"minIntervalMs": 2000, "maxPerHour": 100}),
            "maxPerHour",
        ),
    ] {
        let a = put_pacing(&app, &tenant, "s", looser.clone()).await;
        assert_eq!(a.status, 400, "{looser}: {a:?}");
        assert!(a.message().contains(field), "names {field}: {a:?}");
        assert!(a.message().contains("ceiling"), "{a:?}");
    }
    let view = pacing_of(&app, &tenant, "s").await.json;
    assert_eq!(view["policy"], Value::Null, "nothing was changed: {view}");
    assert_eq!(
        view["effective"],
        json!(ceiling_view(1000, None, 60)),
        "{view}"
    );

    let set = put_pacing(&app, &tenant, "s", json!({"minIntervalMs": 2000})).await;
    assert_eq!(set.status, 200, "{set:?}");
    assert_eq!(set.json["effective"], json!(ceiling_view(2000, None, 60)));

    // The default: looser than the ceiling is refused, naming it; within, it paces the
    // sessions that have no policy of their own.
    let (status, body) =
        patch_pacing(&app, &tenant, json!({"default": {"minIntervalMs": 10}})).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("pacing.default.minIntervalMs"),
        "{body}"
    );
    let (status, body) = patch_pacing(&app, &tenant, json!({"default": {"jitterMs": 5000}})).await;
    assert_eq!(status, 200, "{body}");
    let removed = answer(app.call(&tenant, Method::DELETE, &pacing_path("s"))).await;
    assert_eq!(removed.status, 200, "{removed:?}");
    assert_eq!(removed.json["policy"], Value::Null);
    assert_eq!(removed.json["tenantDefault"]["jitterMs"], 5000);
    assert_eq!(
        removed.json["effective"],
        json!(ceiling_view(1000, Some(5000), 60))
    );

    // `null` removes, a field left out is kept.
    let (status, _) = patch_pacing(&app, &tenant, json!({"ceiling": null})).await;
    assert_eq!(status, 200);
    let (_, pacing) = app.admin(Method::GET, &admin_path, None).await;
    assert_eq!(pacing["ceiling"], Value::Null, "{pacing}");
    assert_eq!(pacing["default"]["jitterMs"], 5000, "{pacing}");
    let (_, audit) = app
        .admin(
            Method::GET,
            &format!("/admin/v1/audit?target_id={}", tenant.id),
            None,
        )
        .await;
    let last = &audit["items"][0]["details"];
    assert_eq!(
        last["before"]["pacing"]["ceiling"]["maxPerHour"], 60,
        "{last}"
    );
    assert_eq!(last["after"]["pacing"]["ceiling"], Value::Null, "{last}");
}

fn ceiling_view(min_interval: u32, jitter: Option<u32>, per_hour: u32) -> Value {
    json!({"minIntervalMs": min_interval, "jitterMs": jitter, "maxPerMinute": null,
           "maxPerHour": per_hour, "maxNewChatsPerDay": null})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ceiling_set_on_one_replica_paces_the_next_sends_on_another() {
    let a = spawn_app().await;
    let b = spawn_replica(&a).await;
    let tenant = a.tenant().await;
    a.working_session(&tenant, "s").await;
    // Replica b knows the session as unpaced.
    let unpaced = send(&b, &tenant, "s", "123456789").await;
    assert_eq!(unpaced.status, 201);
    assert_eq!(unpaced.header("x-pacing-wait-ms"), "");

    let (status, body) = patch_pacing(&a, &tenant, json!({"ceiling": {"maxPerHour": 1000}})).await;
    assert_eq!(status, 200, "{body}");
    let paced = eventually(PATIENCE, || async {
        !send(&b, &tenant, "s", "123456789")
            .await
            .header("x-pacing-wait-ms")
            .is_empty()
    })
    .await;
    assert!(
        paced,
        "replica b paces the session once the ceiling is announced"
    );
}

#[tokio::test]
async fn an_unpaced_sessions_sends_never_read_a_pacing_policy_from_the_database() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    app.working_session(&tenant, "free").await;
    assert_eq!(send(&app, &tenant, "free", "123456789").await.status, 201);
    let reads = metric(&app, "wagw_pacing_policy_reads_total").await;
    let unpaced = metric(&app, "wagw_pacing_sends_total{outcome=\"unpaced\"}").await;
    for _ in 0..5 {
        let a = send(&app, &tenant, "free", "123456789").await;
        assert_eq!(a.status, 201);
        assert_eq!(a.header("x-pacing-wait-ms"), "");
    }
    assert_eq!(metric(&app, "wagw_pacing_policy_reads_total").await, reads);
    assert_eq!(
        metric(&app, "wagw_pacing_sends_total{outcome=\"unpaced\"}").await,
        unpaced + 5.0
    );
    assert_eq!(app.rows("paced_sends").await, 0);
    assert_eq!(app.rows("session_pacing").await, 0);
}

/// A sample of the gateway's `/metrics` (0 when it has none yet).
async fn metric(app: &TestApp, series: &str) -> f64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn hostile_policies_are_refused_naming_the_field_and_change_nothing() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    app.working_session(&tenant, "s").await;
    let cases = [
        (json!({"minIntervalMs": -1}), "minIntervalMs"),
        (json!({"minIntervalMs": 300.5}), "minIntervalMs"),
        (json!({"minIntervalMs": 1e3}), "minIntervalMs"),
        (json!({"minIntervalMs": "300"}), "minIntervalMs"),
        (json!({"jitterMs": 3_600_001}), "jitterMs"),
        (json!({"maxPerHour": u64::MAX}), "maxPerHour"),
        (json!({"maxPerMinute": 0}), "maxPerMinute"),
        (json!({"maxNewChatsPerDay": true}), "maxNewChatsPerDay"),
        (json!({"minIntervalMS": 300}), "minIntervalMS"),
        (long_unknown_field(), "unknown pacing field"),
        (json!([{"minIntervalMs": 300}]), "object"),
        (json!("fast"), "object"),
    ];
    for (body, named) in cases {
        let a = put_pacing(&app, &tenant, "s", body.clone()).await;
        assert_eq!(a.status, 400, "{body}: {a:?}");
        assert!(a.message().contains(named), "{body}: {a:?}");
        assert!(
            a.message().len() < 400,
            "the message does not echo the input whole"
        );
    }
    let huge = r#"{"minIntervalMs": 100000000000000000000000000000}"#;
    let a = answer(
        app.call(&tenant, Method::PUT, &pacing_path("s"))
            .header("content-type", "application/json")
            .body(huge),
    )
    .await;
    assert_eq!(a.status, 400, "{a:?}");
    assert!(a.message().contains("minIntervalMs"), "{a:?}");
    let view = pacing_of(&app, &tenant, "s").await.json;
    assert_eq!(view["policy"], Value::Null, "{view}");
    assert_eq!(view["effective"], Value::Null, "{view}");

    // The admin's PATCH refuses the same values, and unknown fields in `pacing`.
    for pacing in [
        json!({"ceiling": {"minIntervalMs": -5}}),
        json!({"default": {"maxPerHour": 1.5}}),
        json!({"floor": {}}),
    ] {
        let (status, body) = patch_pacing(&app, &tenant, pacing.clone()).await;
        assert_eq!(status, 400, "{pacing}: {body}");
    }
    let (_, stored) = app
        .admin(
            Method::GET,
            &format!("/admin/v1/tenants/{}/pacing", tenant.id),
            None,
        )
        .await;
    assert_eq!(stored, json!({"default": null, "ceiling": null}));
}

#[tokio::test]
async fn another_tenants_session_is_404_and_scopes_are_checked() {
    let app = spawn_app().await;
    let owner = app.tenant().await;
    app.working_session(&owner, "mine").await;
    pace(&app, &owner, "mine", json!({"minIntervalMs": 1000})).await;
    let other = app.tenant().await;
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let mut req = app.call(&other, method.clone(), &pacing_path("mine"));
        if method == Method::PUT {
            req = req.json(&json!({}));
        }
        let a = answer(req).await;
        assert_eq!(a.status, 404, "{method}: {a:?}");
        assert_eq!(a.json["statusCode"], 404);
    }
    for odd in ["..%2Fmine", "mine%00", "%20mine"] {
        assert_eq!(
            app.get_as(&owner, &pacing_path(odd)).await.status,
            404,
            "{odd}"
        );
    }
    let owner_reader = TestTenant {
        key: issue_key(&app, &owner, &["sessions:read"]).await,
        ..owner.clone()
    };
    assert_eq!(pacing_of(&app, &owner_reader, "mine").await.status, 200);
    let refused = put_pacing(&app, &owner_reader, "mine", json!({})).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(refused.message().contains("sessions:write"), "{refused:?}");
    let view = pacing_of(&app, &owner, "mine").await.json;
    assert_eq!(view["policy"]["minIntervalMs"], 1000, "unchanged: {view}");
}

/// A policy with a 5,000-character unknown field.
fn long_unknown_field() -> Value {
    let mut body = json!({"minIntervalMs": 300});
    body["x".repeat(5000)] = json!(1);
    body
}

/// A new key of `tenant`'s with `scopes`.
async fn issue_key(app: &TestApp, tenant: &TestTenant, scopes: &[&str]) -> String {
    let (status, key) = app
        .admin(
            Method::POST,
            &format!("/admin/v1/tenants/{}/keys", tenant.id),
            Some(json!({"name": "narrow", "scopes": scopes})),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    key["key"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_test_keys_session_is_paced_apart_and_the_upstream_sees_none_of_it() {
    let app = impatient_app().await;
    let live = app.tenant().await;
    let test = test_key_of(&app, &live).await;
    self_scanned_session(&app, &test, "ci").await;
    app.working_session(&live, "prod").await;
    // Neither key reaches the other mode's session.
    assert_eq!(pacing_of(&app, &live, "ci").await.status, 404);
    assert_eq!(put_pacing(&app, &live, "ci", json!({})).await.status, 404);
    assert_eq!(pacing_of(&app, &test, "prod").await.status, 404);
    assert_eq!(put_pacing(&app, &test, "prod", json!({})).await.status, 404);
    app.clear_sim_log().await;

    pace(&app, &test, "ci", json!({"minIntervalMs": 5000})).await;
    assert_eq!(send(&app, &test, "ci", "123456789").await.status, 201);
    assert_refused(&send(&app, &test, "ci", "123456789").await, "minIntervalMs");
    // The live session is not paced by the test session's policy.
    for _ in 0..2 {
        assert_eq!(send(&app, &live, "prod", "123456789").await.status, 201);
    }
    assert_eq!(
        app.sim_count("POST", "/v1/sendText").await,
        2,
        "the upstream saw the live sends only"
    );
    let usage = app.get_as(&live, "/v1/usage").await.json;
    let ci = usage["pacing"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["session"] == "ci")
        .cloned()
        .unwrap();
    assert_eq!(ci["mode"], "test", "{usage}");
    assert_eq!(ci["refusals"], 1, "{usage}");
}
