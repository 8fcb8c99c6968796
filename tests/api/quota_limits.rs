//! Per-second and session limits across replicas, the organisation's upstream budget shared
//! fairly, the quota headers on every answer, and usage reports.

use crate::helpers::{
    answer, invalid_call, leased, list_sessions, spawn_app, spawn_app_full, spawn_replica, Answer,
    TestApp, TestTenant,
};
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Two replicas on one database, and a tenant limited to `rate` calls per second whose key
/// both have verified (so the calls measured are not slowed by argon2id); the call log is empty.
async fn two_replicas_with_rate(rate: usize, monthly: i64) -> (TestApp, TestApp, TestTenant) {
    let app = spawn_app().await;
    let replica = spawn_replica(&app).await;
    let tenant = app
        .tenant_of(json!({"requests_per_second": rate, "monthly_requests": monthly}))
        .await;
    for gw in [&app, &replica] {
        invalid_call(&gw.client, &gw.address, &tenant.key).await;
    }
    app.clear_sim_log().await;
    (app, replica, tenant)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_across_two_replicas_admits_no_more_than_rate_plus_burst() {
    let rate = 5;
    let (app, replica, tenant) = two_replicas_with_rate(rate, 1000).await;

    let bases = [app.address.clone(), replica.address.clone()];
    let started = Instant::now();
    let answers =
        join_all((0..40).map(|i| list_sessions(&app.client, &bases[i % 2], &tenant.key))).await;
    let elapsed = started.elapsed().as_secs_f64();

    let admitted = answers.iter().filter(|a| a.status == 200).count();
    // GCRA with a burst equal to the rate: `rate` at once, then `rate` per second.
    let bound = rate + (rate as f64 * elapsed).ceil() as usize;
    assert!(
        admitted <= bound,
        "{admitted} admitted in {elapsed:.2} s, at most {bound} allowed"
    );
    if elapsed <= 1.0 {
        assert!(
            admitted <= 2 * rate,
            "no second admits more than rate + burst"
        );
    }
    assert!(admitted >= rate, "the burst is honoured: {admitted}");
    for a in answers.iter().filter(|a| a.status != 200) {
        assert_eq!(a.status, 429, "{a:?}");
        assert!(
            a.message().contains("rate limit of 5 requests per second"),
            "{a:?}"
        );
        assert!(a.retry_after().is_some_and(|s| s >= 1), "{a:?}");
        assert_eq!(a.headers["ratelimit-policy"], "5;w=1");
    }
    assert_eq!(app.sim_count("GET", "/v1/sessions").await, admitted);

    // All-or-nothing: the refused calls took nothing of the monthly quota.
    let (_, report) = app
        .admin(
            Method::GET,
            &format!("/admin/v1/tenants/{}/usage", tenant.id),
            None,
        )
        .await;
    let refused_for_rate = report["refusals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["reason"] == "rate_limit")
        .map(|r| r["refusals"].as_i64().unwrap())
        .sum::<i64>();
    let local_refusals = answers
        .iter()
        .enumerate()
        .filter(|(i, a)| i % 2 == 0 && a.status == 429)
        .count() as i64;
    assert!(refused_for_rate >= local_refusals, "{report}");
    // Both replicas hand back what they hold at shutdown: what stays leased is what was
    // admitted; nothing refused was taken from the month.
    // The database outlives both gateways: it is read after they are gone.
    let (pool, _db) = (app.pool.clone(), app.db.clone());
    app.stop().await;
    replica.stop().await;
    assert_eq!(leased(&pool, &tenant).await, admitted as i64);
}

/// A rate high enough that replicas reserve cells in blocks: calls paced over two seconds on
/// two replicas never exceed the bound in any one-second window, nor over the whole run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reserved_blocks_keep_every_second_within_rate_plus_burst_across_two_replicas() {
    let rate = 50;
    let (app, replica, tenant) = two_replicas_with_rate(rate, 100_000).await;

    // 20 waves of 30 calls, 100 ms apart, alternating replicas: three times the rate.
    let bases = [app.address.clone(), replica.address.clone()];
    let started = Instant::now();
    let calls = (0..600).map(|i| {
        let (client, base, key) = (app.client.clone(), bases[i % 2].clone(), tenant.key.clone());
        async move {
            // reason: the waves are paced on purpose, 100 ms apart, to spread calls over seconds
            tokio::time::sleep(Duration::from_millis(100 * (i / 30) as u64)).await;
            let sent = started.elapsed().as_secs_f64();
            let answer = list_sessions(&client, &base, &key).await;
            (sent, started.elapsed().as_secs_f64(), answer.status)
        }
    });
    let answers = join_all(calls).await;
    let elapsed = started.elapsed().as_secs_f64();

    let admitted: Vec<(f64, f64)> = answers
        .iter()
        .filter(|(_, _, status)| *status == 200)
        .map(|(sent, answered, _)| (*sent, *answered))
        .collect();
    assert!(
        answers.iter().all(|(_, _, s)| *s == 200 || *s == 429),
        "only admissions and rate refusals"
    );
    let bound = rate + (rate as f64 * elapsed).ceil() as usize;
    assert!(
        admitted.len() <= bound,
        "{} admitted in {elapsed:.2} s, at most {bound} allowed",
        admitted.len()
    );
    // A call sent and answered within [a, a + 1) was admitted in that second.
    for (window_start, _) in &admitted {
        let within = admitted
            .iter()
            .filter(|(sent, answered)| sent >= window_start && *answered < window_start + 1.0)
            .count();
        assert!(
            within <= 2 * rate,
            "{within} admitted within one second from {window_start:.3} s"
        );
    }
    // Blocks expire unspent at most once per replica per reservation: most of the allowance
    // is still used.
    assert!(
        admitted.len() >= rate + rate / 2,
        "the rate is honoured: {} admitted in {elapsed:.2} s",
        admitted.len()
    );
    assert_eq!(app.sim_count("GET", "/v1/sessions").await, admitted.len());
    app.stop().await;
    replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_sessions_holds_under_concurrent_creation_on_two_replicas() {
    let app = spawn_app().await;
    let replica = spawn_replica(&app).await;
    let tenant = app.tenant_of(json!({"max_sessions": 3})).await;
    for gw in [&app, &replica] {
        invalid_call(&gw.client, &gw.address, &tenant.key).await;
    }
    app.clear_sim_log().await;
    let bases = [app.address.clone(), replica.address.clone()];
    let creations = (0..16).map(|i| {
        answer(
            app.client
                .post(format!("{}/v1/sessions", bases[i % 2]))
                .header("x-api-key", &tenant.key)
                .json(&json!({"name": format!("s{i}")})),
        )
    });
    let answers = join_all(creations).await;
    assert_eq!(answers.iter().filter(|a| a.status == 201).count(), 3);
    for a in answers.iter().filter(|a| a.status != 201) {
        assert_eq!(a.status, 429, "{a:?}");
        assert!(a.message().contains("session limit"), "{a:?}");
        assert!(a.retry_after().is_some_and(|s| s >= 1));
    }
    let owned: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions WHERE tenant_id = $1::uuid")
        .bind(&tenant.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(owned, 3);
    assert_eq!(
        app.sim_count("POST", "/v1/sessions").await,
        3,
        "refused creations never reached the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tenants_flooding_the_upstream_budget_share_it_fairly_and_the_upstream_never_says_429() {
    let budget = 6;
    let app = spawn_app_full(|opts| {
        opts.vars
            .insert("WAGW_UPSTREAM_RPS".into(), budget.to_string());
        opts.sim.as_mut().unwrap().rps = Some(budget);
    })
    .await;
    let tenants = [app.tenant().await, app.tenant().await, app.tenant().await];
    for t in &tenants {
        invalid_call(&app.client, &app.address, &t.key).await;
    }
    app.clear_sim_log().await;

    let flood_for = Duration::from_secs(4);
    let started = Instant::now();
    let workers = tenants
        .iter()
        .enumerate()
        .flat_map(|(n, t)| (0..5).map(move |_| (n, t.key.clone())));
    let results = join_all(workers.map(|(n, key)| {
        let app = &app;
        async move {
            let mut mine = Vec::new();
            while started.elapsed() < flood_for {
                let a = list_sessions(&app.client, &app.address, &key).await;
                mine.push((started.elapsed(), a));
            }
            (n, mine)
        }
    }))
    .await;

    // Whoever comes first while nobody waits goes first: fairness is judged once every
    // tenant is queueing, after the first window.
    let steady = Duration::from_millis(1500);
    let mut admitted = [0usize; 3];
    let mut steady_admitted = [0usize; 3];
    for (n, answers) in &results {
        for (at, a) in answers {
            match a.status {
                200 => {
                    admitted[*n] += 1;
                    if *at >= steady {
                        steady_admitted[*n] += 1;
                    }
                }
                429 => {
                    assert!(
                        a.message()
                            .contains("upstream budget of 6 requests per second"),
                        "{a:?}"
                    );
                    assert!(a.retry_after().is_some_and(|s| s >= 1), "{a:?}");
                }
                other => panic!("unexpected {other}: {a:?}"),
            }
        }
    }
    let total: usize = admitted.iter().sum();
    let log = app.sim_log().await;
    let calls: Vec<&Value> = log.iter().filter(|e| e["path"] == "/v1/sessions").collect();
    assert_eq!(calls.len(), total);
    assert!(
        calls.iter().all(|e| e["status"] == 200),
        "the upstream answered something other than 200: {:?}",
        calls.iter().map(|e| &e["status"]).collect::<Vec<_>>()
    );
    // Never more than the budget in any second of the upstream's count.
    let mut per_second: BTreeMap<String, usize> = BTreeMap::new();
    for e in &calls {
        let time = e["time"].as_str().unwrap();
        *per_second.entry(time[..19].to_owned()).or_default() += 1;
    }
    assert!(
        per_second.values().all(|n| *n <= budget as usize),
        "{per_second:?}"
    );
    assert!(total >= 3 * budget as usize, "the budget was used: {total}");
    // Each tenant got about a third.
    let steady_total: usize = steady_admitted.iter().sum();
    assert!(steady_total >= 2 * budget as usize, "{steady_admitted:?}");
    let third = steady_total as f64 / 3.0;
    for (n, got) in steady_admitted.iter().enumerate() {
        assert!(
            (*got as f64 - third).abs() <= (third * 0.25).max(2.0),
            "tenant {n} got {got} of {steady_total} once all were queueing: {steady_admitted:?} (overall {admitted:?})"
        );
    }
}

fn has_quota_headers(a: &Answer, monthly: i64, rate: i32) {
    let h = |name: &str| {
        a.headers
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing: {a:?}"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(h("x-ratelimit-requests-limit"), monthly.to_string());
    let remaining: i64 = h("x-ratelimit-requests-remaining").parse().unwrap();
    assert!((0..=monthly).contains(&remaining));
    let reset: u64 = h("x-ratelimit-requests-reset").parse().unwrap();
    assert!((1..=31 * 86400).contains(&reset));
    assert_eq!(h("ratelimit-policy"), format!("{rate};w=1"));
    assert!(
        h("ratelimit").starts_with(&format!("limit={rate}, remaining=")),
        "{a:?}"
    );
}

fn remaining(a: &Answer) -> i64 {
    a.header("x-ratelimit-requests-remaining").parse().unwrap()
}

const SEND: &str = "/v1/sendText";

fn hello() -> Value {
    json!({"session": "default", "chatId": "123456789", "text": "hi"})
}

/// A tenant of 10 calls a month (50 a second) that has spent 2: creating its WORKING session
/// and one message; the call log holds only the message.
async fn tenant_with_two_spent(app: &TestApp) -> TestTenant {
    let tenant = app
        .tenant_of(json!({"monthly_requests": 10, "requests_per_second": 50}))
        .await;
    app.working_session(&tenant, "default").await; // one call: createSession
    app.clear_sim_log().await;
    let ok = app.post_as(&tenant, SEND, hello()).await;
    assert_eq!(ok.status, 201, "{ok:?}");
    has_quota_headers(&ok, 10, 50);
    assert_eq!(remaining(&ok), 8);
    tenant
}

/// Spends the rest of the tenant's month (8 calls) and answers the first refusal.
async fn spend_the_month(app: &TestApp, tenant: &TestTenant) -> Answer {
    for _ in 0..8 {
        let a = list_sessions(&app.client, &app.address, &tenant.key).await;
        assert_eq!(a.status, 200);
    }
    list_sessions(&app.client, &app.address, &tenant.key).await
}

#[tokio::test]
async fn the_gateways_own_v1_answers_carry_the_quota_and_spend_nothing() {
    let app = spawn_app().await;
    let tenant = tenant_with_two_spent(&app).await;
    for path in ["/v1/me", "/v1/usage"] {
        let own = app.get_as(&tenant, path).await;
        assert_eq!(own.status, 200, "{path}: {own:?}");
        has_quota_headers(&own, 10, 50);
        assert_eq!(remaining(&own), 8, "{path}");
    }
}

#[tokio::test]
async fn calls_the_gateway_refuses_itself_carry_the_quota_and_spend_nothing() {
    let app = spawn_app().await;
    let tenant = tenant_with_two_spent(&app).await;
    // Validation, ownership, media type.
    let refusals = [
        app.post_as(
            &tenant,
            SEND,
            json!({"session": "default", "chatId": "123456789"}),
        )
        .await,
        app.post_as(
            &tenant,
            SEND,
            json!({"session": "not-mine", "chatId": "123456789", "text": "hi"}),
        )
        .await,
        answer(
            app.call(&tenant, Method::POST, SEND)
                .header("content-type", "text/plain")
                .body("hi"),
        )
        .await,
    ];
    assert_eq!(
        refusals.iter().map(|a| a.status).collect::<Vec<_>>(),
        vec![400, 404, 415]
    );
    for a in &refusals {
        has_quota_headers(a, 10, 50);
        assert_eq!(remaining(a), 8, "{a:?}");
    }
    // A key without the scope: 403, with headers, no spend.
    let narrow = app
        .tenant_with(
            json!({"plan": "custom", "quota": {"monthly_requests": 10, "requests_per_second": 50}}),
            &["usage:read"],
        )
        .await;
    let a = app.post_as(&narrow, SEND, hello()).await;
    assert_eq!(a.status, 403);
    has_quota_headers(&a, 10, 50);
    // Unauthenticated: 401, and nothing to count against.
    let a = list_sessions(&app.client, &app.address, "wagw_nope").await;
    assert_eq!(a.status, 401);
    assert_eq!(app.sim_count("POST", SEND).await, 1);
}

#[tokio::test]
async fn past_the_month_a_call_is_429_with_the_quota_and_retry_after() {
    let app = spawn_app().await;
    let tenant = tenant_with_two_spent(&app).await;
    let refused = spend_the_month(&app, &tenant).await;
    assert_eq!(refused.status, 429);
    has_quota_headers(&refused, 10, 50);
    assert_eq!(remaining(&refused), 0);
    assert!(refused.retry_after().unwrap() >= 1);
}

#[tokio::test]
async fn the_usage_report_needs_the_usage_read_scope() {
    let app = spawn_app().await;
    let other = app
        .tenant_with(json!({"plan": "custom", "quota": {}}), &["sessions:read"])
        .await;
    assert_eq!(app.get_as(&other, "/v1/usage").await.status, 403);
}

#[tokio::test]
async fn the_usage_report_counts_the_month_by_endpoint_day_and_refusal() {
    let app = spawn_app().await;
    let tenant = tenant_with_two_spent(&app).await;
    spend_the_month(&app, &tenant).await;
    let usage = app.get_as(&tenant, "/v1/usage").await;
    let report = &usage.json;
    assert_eq!(usage.status, 200, "{report}");
    assert_eq!(report["limit"], 10);
    assert_eq!(report["used"], 10);
    assert_eq!(report["remaining"], 0);
    assert!(report["reset_seconds"].as_u64().unwrap() >= 1);
    let endpoints: BTreeMap<String, i64> = report["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["endpoint"].as_str().unwrap().to_owned(),
                e["requests"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(endpoints.values().sum::<i64>(), 10, "{report}");
    assert_eq!(
        endpoints.len(),
        3,
        "createSession, sendText, listSessions: {report}"
    );
    assert_eq!(report["days"].as_array().unwrap().len(), 1);
    assert_eq!(report["days"][0]["requests"], 10);
    assert_eq!(
        report["refusals"],
        json!([{"reason": "monthly_quota", "refusals": 1}])
    );
}

#[tokio::test]
async fn the_admin_usage_report_reads_the_rollups_any_replica_sees() {
    let app = spawn_app().await;
    let tenant = tenant_with_two_spent(&app).await;
    spend_the_month(&app, &tenant).await;
    let (status, report) = app
        .admin(
            Method::GET,
            &format!("/admin/v1/tenants/{}/usage", tenant.id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["used"], 10);
    // A gateway that served none of those calls reports them from the database alone.
    let replica = spawn_replica(&app).await;
    let (status, admin_report) = replica
        .admin(
            Method::GET,
            &format!("/admin/v1/tenants/{}/usage", tenant.id),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(admin_report["used"], 10, "{admin_report}");
    assert_eq!(admin_report["limit"], 10);

    // The organisation's standing.
    let (status, upstream) = app.admin(Method::GET, "/admin/v1/upstream", None).await;
    assert_eq!(status, 200, "{upstream}");
    assert_eq!(upstream["upstream_429s"], 0);
}

/// The quota headers are stamped on every answer to an authenticated tenant, in one place:
/// `/v1/usage` refusing a key without `usage:read` carries them too.
#[tokio::test]
async fn a_usage_refusal_for_a_missing_scope_carries_the_quota_headers() {
    let app = spawn_app().await;
    let tenant = app
        .tenant_with(
            json!({"plan": "custom", "quota": {"monthly_requests": 7, "requests_per_second": 3}}),
            &["messages:send"],
        )
        .await;
    let res = app.tenant_get(&tenant, "/v1/usage").await;
    assert_eq!(res.status(), 403);
    let headers = res.headers();
    assert_eq!(headers["x-ratelimit-requests-limit"], "7");
    assert_eq!(headers["x-ratelimit-requests-remaining"], "7");
    assert_eq!(headers["ratelimit-policy"], "3;w=1");
}
