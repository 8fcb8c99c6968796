//! Monthly quotas: exact across gateway processes sharing one database, leases lost (never
//! freed) by a replica killed with SIGKILL, month rollover on an injected clock, quota changes,
//! top-ups and resets by an admin, and the database going away.

use crate::helpers::{spawn_app, spawn_app_full, GatewayProcess, TestApp, TestTenant};
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use wa_gateway::services::quota::{Clock, OffsetClock};

/// What one call answered: status, `Retry-After`, the error message (if any) and headers.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub message: String,
    pub headers: reqwest::header::HeaderMap,
}

pub async fn answer(res: reqwest::Response) -> Answer {
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let retry_after = headers.get("retry-after").map(|v| {
        v.to_str()
            .unwrap()
            .parse()
            .expect("Retry-After in whole seconds")
    });
    let body: Value = res.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        retry_after,
        message: body["message"].as_str().unwrap_or_default().to_owned(),
        headers,
    }
}

/// `GET /v1/sessions` as `tenant` at `base` (any gateway): a call that is forwarded.
pub async fn list_sessions(client: &reqwest::Client, base: &str, key: &str) -> Answer {
    answer(
        client
            .get(format!("{base}/v1/sessions"))
            .header("x-api-key", key)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// A call the gateway refuses itself (malformed JSON): it authenticates the key (warming that
/// replica's key cache) and must count nothing.
pub async fn invalid_call(client: &reqwest::Client, base: &str, key: &str) -> Answer {
    let a = answer(
        client
            .post(format!("{base}/v1/sendText"))
            .header("x-api-key", key)
            .header("content-type", "application/json")
            .body("{")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, 400, "{a:?}");
    a
}

/// How many calls the simulator received as `method path`.
pub async fn sim_count(app: &TestApp, method: &str, path: &str) -> usize {
    app.sim_log()
        .await
        .iter()
        .filter(|e| e["method"] == method && e["path"] == path)
        .count()
}

pub async fn monthly_tenant(app: &TestApp, monthly: i64) -> TestTenant {
    app.tenant_with(
        json!({"plan": "custom", "quota": {"monthly_requests": monthly}}),
        &["*"],
    )
    .await
}

async fn leased(app: &TestApp, tenant: &TestTenant) -> i64 {
    sqlx::query_scalar(
        "SELECT COALESCE(sum(leased), 0)::bigint FROM quota_months WHERE subject = $1",
    )
    .bind(&tenant.id)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

fn assert_monthly_refusal(a: &Answer, limit: i64) {
    assert_eq!(a.status, 429, "{a:?}");
    assert!(
        a.message
            .contains(&format!("monthly quota of {limit} requests")),
        "the message names the limit: {a:?}"
    );
    assert!(a.retry_after.is_some_and(|s| s >= 1), "{a:?}");
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
    assert_eq!(sim_count(&app, "GET", "/v1/sessions").await, 100);
    assert_eq!(leased(&app, &tenant).await, 100);
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
    let lease = leased(&app, &tenant).await;
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
    assert_eq!(sim_count(&app, "GET", "/v1/sessions").await as i64, total);
    assert_eq!(leased(&app, &tenant).await, 100);
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
    let retry = a.retry_after.unwrap();
    assert!(
        retry.abs_diff(to_month_end) <= 5,
        "Retry-After {retry} vs {to_month_end} s to the month's end"
    );

    // Raised mid-month: effective at once, on the very next call.
    let (status, body) = app
        .admin(
            Method::PATCH,
            &format!("/admin/v1/tenants/{}", tenant.id),
            Some(json!({"quota": {"monthly_requests": 5}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(spend_until_refused(&app, &tenant, 5).await, 2);

    // Top-up: two more this month.
    let (status, report) = app
        .admin(
            Method::POST,
            &format!("{usage_path}/top-up"),
            Some(json!({"requests": 2})),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["limit"], 7);
    assert_eq!(report["remaining"], 2);
    let (status, _) = app
        .admin(
            Method::POST,
            &format!("{usage_path}/top-up"),
            Some(json!({"requests": 0})),
        )
        .await;
    assert_eq!(status, 400);
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
    assert_eq!(
        actions.iter().filter(|a| *a == "quota.top_up").count(),
        1,
        "{actions:?}"
    );
    assert_eq!(
        actions.iter().filter(|a| *a == "quota.reset").count(),
        1,
        "{actions:?}"
    );

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
        sim_count(&app, "GET", "/v1/sessions").await,
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
    let (status, body) = app
        .admin(
            Method::PATCH,
            &format!("/admin/v1/tenants/{}", tenant.id),
            Some(json!({"quota": {"monthly_requests": 4}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let a = list_sessions(&app.client, &app.address, &tenant.key).await;
    assert_monthly_refusal(&a, 4);
    assert_eq!(sim_count(&app, "GET", "/v1/sessions").await, 4);
}

// ---- The database going away ------------------------------------------------------------------

/// A TCP relay in front of the test database that can be cut: then every connection through
/// it drops and new ones are refused, as when PostgreSQL becomes unreachable.
pub struct PgRelay {
    pub url: String,
    tasks: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl PgRelay {
    /// Must run inside the tokio runtime (it spawns its accept loop).
    pub fn start(database_url: &str) -> Self {
        use std::str::FromStr;
        let options = sqlx::postgres::PgConnectOptions::from_str(database_url).unwrap();
        let port = options.get_port();
        let target = match options.get_socket() {
            Some(dir) => Target::Unix(dir.join(format!(".s.PGSQL.{port}"))),
            None => Target::Tcp(format!("{}:{port}", options.get_host())),
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let relay_port = listener.local_addr().unwrap().port();
        let mut url = url::Url::parse(database_url).unwrap();
        let query: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "host")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.set_query(None);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(relay_port)).unwrap();

        let tasks: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let conns = tasks.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                let target = target.clone();
                let conn = tokio::spawn(async move {
                    match target {
                        Target::Unix(path) => {
                            if let Ok(mut out) = tokio::net::UnixStream::connect(path).await {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                            }
                        }
                        Target::Tcp(addr) => {
                            if let Ok(mut out) = tokio::net::TcpStream::connect(addr).await {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                            }
                        }
                    }
                });
                conns.lock().unwrap().push(conn.abort_handle());
            }
        });
        tasks.lock().unwrap().push(accept.abort_handle());
        Self {
            url: url.to_string(),
            tasks,
        }
    }

    /// PostgreSQL is unreachable from now on.
    pub fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

#[derive(Clone)]
enum Target {
    Unix(std::path::PathBuf),
    Tcp(String),
}

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
    let who = wa_gateway::services::auth::Tenant {
        id: tenant.id.parse().unwrap(),
        name: tenant.name.clone(),
        quota: wa_gateway::services::auth::Quota {
            monthly_requests: Some(100),
            requests_per_second: None,
            max_sessions: None,
        },
        plan: "custom".into(),
        suspended: false,
    };
    let first = quotas.admit(&who, "listSessions").await.expect("admitted");
    quotas.commit(first);
    let lease = leased(&app, &tenant).await;
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
    assert_eq!(leased(&app, &tenant).await, lease);
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
        app.call(&tenant, Method::POST, "/v1/sendText")
            .json(&json!({"session": "default", "chatId": "123456789", "text": "hi"}))
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 201);
    app.clear_sim_log().await;

    relay.cut();
    // Whatever was leased may still be spent; the first call that needs the database is 503
    // with the error shape, and from then on nothing reaches the upstream.
    let mut forwarded = 0;
    let refusal = loop {
        let a = answer(send().await.unwrap()).await;
        if a.status != 201 {
            break a;
        }
        forwarded += 1;
        assert!(forwarded < 100, "never refused");
    };
    assert_eq!(refusal.status, 503, "{refusal:?}");
    assert!(!refusal.message.is_empty());
    for _ in 0..3 {
        assert_eq!(answer(send().await.unwrap()).await.status, 503);
    }
    assert_eq!(sim_count(&app, "POST", "/v1/sendText").await, forwarded);
}
