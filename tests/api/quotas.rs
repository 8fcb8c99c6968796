//! Monthly quotas: exact across gateway processes sharing one database, leases lost (never
//! freed) by a replica killed with SIGKILL, month rollover on an injected clock, quota changes,
//! top-ups and resets by an admin, and the database going away.

use crate::helpers::{
    answer, invalid_call, list_sessions, spawn_app, spawn_app_full, Answer, GatewayProcess,
    PgRelay, TestApp, TestTenant,
};
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use wa_gateway::services::quota::{Clock, OffsetClock};

async fn monthly_tenant(app: &TestApp, monthly: i64) -> TestTenant {
    app.tenant_of(json!({"monthly_requests": monthly})).await
}

fn assert_monthly_refusal(a: &Answer, limit: i64) {
    assert_eq!(a.status, 429, "{a:?}");
    assert!(
        a.message()
            .contains(&format!("monthly quota of {limit} requests")),
        "the message names the limit: {a:?}"
    );
    assert!(a.retry_after().is_some_and(|s| s >= 1), "{a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn monthly_quota_is_exact_across_two_gateway_processes() {
    let app = spawn_app().await;
    let tenant = monthly_tenant(&app, 100).await;
    let (a, b) = tokio::join!(
        GatewayProcess::start(&app.vars),
        GatewayProcess::start(&app.vars)
    );
    let bases = [a.address.clone(), b.address.clone()];
    for base in &bases {
        invalid_call(&app.client, base, &tenant.key).await;
    }
    app.clear_sim_log().await;

    let calls = (0..300).map(|i| list_sessions(&app.client, &bases[i % 2], &tenant.key));
    let answers = join_all(calls).await;

    let admitted = answers.iter().filter(|a| a.status == 200).count();
    let refused: Vec<&Answer> = answers.iter().filter(|a| a.status != 200).collect();
    assert_eq!(admitted, 100, "exactly the quota is admitted");
    assert_eq!(refused.len(), 200);
    for a in refused {
        assert_monthly_refusal(a, 100);
    }
    assert_eq!(app.sim_count("GET", "/v1/sessions").await, 100);
    assert_eq!(app.leased(&tenant).await, 100);
    // Both processes served some of the admitted calls (the quota is shared, not split).
    for (i, _) in bases.iter().enumerate() {
        let served = answers
            .iter()
            .enumerate()
            .filter(|(j, a)| j % 2 == i && a.status == 200)
            .count();
        assert!(served > 0, "process {i} admitted nothing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_holding_a_lease_loses_at_most_that_lease() {
    let app = spawn_app().await;
    let tenant = monthly_tenant(&app, 100).await;
    let doomed = GatewayProcess::start(&app.vars).await;
    invalid_call(&app.client, &doomed.address, &tenant.key).await;
    app.clear_sim_log().await;

    for _ in 0..5 {
        let a = list_sessions(&app.client, &doomed.address, &tenant.key).await;
        assert_eq!(a.status, 200, "{a:?}");
    }
    // The doomed replica reserved a block and spent 5 of it.
    let lease = app.leased(&tenant).await;
    assert!(
        (5..=100).contains(&lease),
        "a block of the quota was leased: {lease}"
    );
    doomed.kill().await;
    invalid_call(&app.client, &app.address, &tenant.key).await;

    // The survivor keeps serving; what the dead replica held is spent, never free again.
    let answers =
        join_all((0..150).map(|_| list_sessions(&app.client, &app.address, &tenant.key))).await;
    let admitted = answers.iter().filter(|a| a.status == 200).count() as i64;
    for a in answers.iter().filter(|a| a.status != 200) {
        assert_monthly_refusal(a, 100);
    }
    assert_eq!(
        admitted,
        100 - lease,
        "everything not leased by the dead replica"
    );
    let total = 5 + admitted;
    assert!(total <= 100, "never over the quota");
    let lost = 100 - total;
    assert_eq!(
        lost,
        lease - 5,
        "the loss is what the dead replica held unspent"
    );
    assert!(lost <= lease, "the loss is at most its lease");
    assert_eq!(app.sim_count("GET", "/v1/sessions").await as i64, total);
    assert_eq!(app.leased(&tenant).await, 100);
}

/// An admin sets the tenant's monthly quota to `monthly`.
async fn set_monthly(app: &TestApp, tenant: &TestTenant, monthly: i64) {
    let (status, body) = app
        .admin(
            Method::PATCH,
            &format!("/admin/v1/tenants/{}", tenant.id),
            Some(json!({"quota": {"monthly_requests": monthly}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

async fn audit_actions(app: &TestApp, tenant: &TestTenant) -> Vec<String> {
    let (status, page) = app
        .admin(
            Method::GET,
            &format!("/admin/v1/audit?target_id={}&per_page=50", tenant.id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

/// Spends calls until the first refusal; answers how many were admitted.
async fn spend_until_refused(app: &TestApp, tenant: &TestTenant, limit: i64) -> i64 {
    let mut admitted = 0;
    loop {
        let a = list_sessions(&app.client, &app.address, &tenant.key).await;
        if a.status != 200 {
            assert_monthly_refusal(&a, limit);
            return admitted;
        }
        admitted += 1;
        assert!(admitted <= 1000, "never refused");
    }
}

#[tokio::test]
async fn quota_changes_top_ups_resets_and_the_month_rolling_over() {
    let clock = Arc::new(OffsetClock::default());
    let app = spawn_app_full({
        let clock: Arc<dyn Clock> = clock.clone();
        |opts| opts.clock = Some(clock)
    })
    .await;
    let tenant = monthly_tenant(&app, 3).await;
    let usage_path = format!("/admin/v1/tenants/{}/usage", tenant.id);

    assert_eq!(spend_until_refused(&app, &tenant, 3).await, 3);
    // Retry-After is the real boundary: the start of next month (UTC).
    let a = list_sessions(&app.client, &app.address, &tenant.key).await;
    let to_month_end = wa_gateway::services::quota::clock::seconds_to_month_end(clock.now());
    let retry = a.retry_after().unwrap();
    assert!(
        retry.abs_diff(to_month_end) <= 5,
        "Retry-After {retry} vs {to_month_end} s to the month's end"
    );

    // Raised mid-month: effective at once, on the very next call.
    set_monthly(&app, &tenant, 5).await;
    assert_eq!(spend_until_refused(&app, &tenant, 5).await, 2);

    // Top-up: two more this month.
    let top_up = |requests: i64| {
        let (app, path) = (&app, format!("{usage_path}/top-up"));
        async move {
            app.admin(Method::POST, &path, Some(json!({ "requests": requests })))
                .await
        }
    };
    let (status, report) = top_up(2).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["limit"], 7);
    assert_eq!(report["remaining"], 2);
    assert_eq!(top_up(0).await.0, 400);
    assert_eq!(spend_until_refused(&app, &tenant, 5).await, 2);

    // Reset: the whole quota again for the rest of the month.
    let (status, report) = app
        .admin(Method::POST, &format!("{usage_path}/reset"), None)
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["remaining"], 5);
    assert_eq!(report["used"], 7);
    assert_eq!(spend_until_refused(&app, &tenant, 5).await, 5);

    let actions = audit_actions(&app, &tenant).await;
    for action in ["quota.top_up", "quota.reset"] {
        let n = actions.iter().filter(|a| *a == action).count();
        assert_eq!(n, 1, "{action}: {actions:?}");
    }

    // The month rolls over (UTC): a fresh quota, the headers and the report follow.
    let old_month = wa_gateway::services::quota::clock::month_key(clock.now());
    let next = wa_gateway::services::quota::clock::next_month_start(clock.now());
    clock.set_offset(next - chrono::Utc::now() + chrono::Duration::hours(1));
    let a = list_sessions(&app.client, &app.address, &tenant.key).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.headers["x-ratelimit-requests-limit"], "5");
    assert_eq!(a.headers["x-ratelimit-requests-remaining"], "4");
    let (status, report) = app.admin(Method::GET, &usage_path, None).await;
    assert_eq!(status, 200);
    assert_ne!(report["month"], old_month.as_str());
    assert_eq!(
        report["month"],
        wa_gateway::services::quota::clock::month_key(clock.now()).as_str()
    );
    assert_eq!(report["used"], 1, "{report}");
    assert_eq!(report["limit"], 5, "the top-up belonged to last month");
    assert_eq!(spend_until_refused(&app, &tenant, 5).await, 4);
    assert_eq!(
        app.sim_count("GET", "/v1/sessions").await,
        3 + 2 + 2 + 5 + 5
    );
}

#[tokio::test]
async fn lowering_the_quota_below_use_refuses_at_once() {
    let app = spawn_app().await;
    let tenant = monthly_tenant(&app, 10).await;
    for _ in 0..4 {
        assert_eq!(
            list_sessions(&app.client, &app.address, &tenant.key)
                .await
                .status,
            200
        );
    }
    set_monthly(&app, &tenant, 4).await;
    let a = list_sessions(&app.client, &app.address, &tenant.key).await;
    assert_monthly_refusal(&a, 4);
    assert_eq!(app.sim_count("GET", "/v1/sessions").await, 4);
}

// ---- The database going away ------------------------------------------------------------------

#[tokio::test]
async fn with_the_database_unreachable_only_leased_quota_is_spent_then_503() {
    // The quota layer on its own, over a connection that can be cut.
    let app = spawn_app().await;
    let tenant = monthly_tenant(&app, 100).await;
    let relay = PgRelay::start(app.db.url());
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(2))
        .connect(&relay.url)
        .await
        .unwrap();
    let config = crate::helpers::config_from(&app.vars).quota;
    let quotas = wa_gateway::services::quota::Quotas::new(
        wa_gateway::db::Db::on_current_runtime(pool),
        &config,
        Arc::new(wa_gateway::services::quota::SystemClock),
    )
    .await
    .unwrap();
    let who = wa_gateway::domain::Tenant {
        id: tenant.id.parse().unwrap(),
        name: tenant.name.clone(),
        quota: wa_gateway::domain::Quota {
            monthly_requests: Some(100),
            requests_per_second: None,
            max_sessions: None,
        },
        plan: wa_gateway::domain::Plan::Custom,
        status: wa_gateway::domain::TenantStatus::Active,
        created_at: chrono::Utc::now(),
    };
    let first = quotas.admit(&who, "listSessions").await.expect("admitted");
    quotas.commit(first);
    let lease = app.leased(&tenant).await;
    assert!(lease > 1 && lease < 100, "a block was leased: {lease}");

    relay.cut();
    let mut spent = 1;
    let refusal = loop {
        match quotas.admit(&who, "listSessions").await {
            Ok(admission) => {
                quotas.commit(admission);
                spent += 1;
                assert!(spent <= lease, "spent more than was leased");
            }
            Err(e) => break e,
        }
    };
    assert_eq!(spent, lease, "the whole lease is spent, then nothing more");
    let answer = wa_gateway::http::error::ApiError::from(refusal);
    assert_eq!(answer.status().as_u16(), 503, "{answer}");
    assert_eq!(app.leased(&tenant).await, lease);
}

#[tokio::test]
async fn with_the_database_unreachable_calls_answer_503_and_nothing_is_forwarded() {
    let mut relay = None;
    let app = spawn_app_full(|opts| {
        let r = PgRelay::start(&opts.vars["DATABASE_URL"]);
        opts.vars.insert("DATABASE_URL".into(), r.url.clone());
        relay = Some(r);
    })
    .await;
    let relay = relay.unwrap();
    let tenant = monthly_tenant(&app, 100).await;
    app.working_session(&tenant, "default").await;
    let send = || {
        answer(
            app.call(&tenant, Method::POST, "/v1/sendText")
                .json(&json!({"session": "default", "chatId": "123456789", "text": "hi"})),
        )
    };
    assert_eq!(send().await.status, 201);
    app.clear_sim_log().await;

    relay.cut();
    // Whatever was leased may still be spent; the first call that needs the database is 503
    // with the error shape, and from then on nothing reaches the upstream.
    let mut forwarded = 0;
    let refusal = loop {
        let a = send().await;
        if a.status != 201 {
            break a;
        }
        forwarded += 1;
        assert!(forwarded < 100, "never refused");
    };
    assert_eq!(refusal.status, 503, "{refusal:?}");
    assert!(!refusal.message().is_empty());
    for _ in 0..3 {
        assert_eq!(send().await.status, 503);
    }
    assert_eq!(app.sim_count("POST", "/v1/sendText").await, forwarded);
}
