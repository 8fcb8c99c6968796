//! The ingress's durability and throughput: an acknowledged event is committed, events
//! arriving together share a commit (the group commit), and a PostgreSQL restart in the middle
//! of a steady relay loses nothing: the ingress answers 503 with `Retry-After` while the
//! database is away, the upstream retries, and every event reaches the receiver.

use crate::helpers::{
    eventually, post_signed, spawn_app, spawn_app_on, subscription, OwnPostgres, Receiver,
    RelayedSession, TestApp, TestDb,
};
use serde_json::json;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A value of the gateway's `/metrics` (a sample without labels); 0 when absent.
async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

async fn relayed(app: &TestApp, receiver: &Receiver) -> RelayedSession {
    RelayedSession::start(
        app,
        &[subscription(
            &receiver.url,
            &["message"],
            None,
            ("constant", 1, 20),
        )],
    )
    .await
}

#[tokio::test]
async fn a_burst_of_events_is_committed_in_fewer_transactions_and_each_delivered_once() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let s = relayed(&app, &receiver).await;
    // The session's own status events, committed before the burst.
    app.sim_delivered().await;
    let before = metric(&app, "wagw_webhook_ingress_batch_events_sum").await;
    let transactions_before = metric(&app, "wagw_webhook_ingress_batch_events_count").await;
    const N: usize = 200;
    let events: Vec<_> = (0..N)
        .map(|i| s.event(&format!("evt_{i}"), "message", json!({"n": i})))
        .collect();
    let answers = futures_util::future::join_all(
        events
            .iter()
            .map(|e| post_signed(&app.address, &s.token, &s.ingress_key, e)),
    )
    .await;
    assert!(
        answers.iter().all(|r| r.status() == 200),
        "every event is acknowledged: {:?}",
        answers.iter().map(|r| r.status()).collect::<Vec<_>>()
    );

    let committed = metric(&app, "wagw_webhook_ingress_batch_events_sum").await;
    let transactions =
        metric(&app, "wagw_webhook_ingress_batch_events_count").await - transactions_before;
    println!("{N} concurrent events committed in {transactions} transactions");
    assert_eq!(
        committed - before,
        N as f64,
        "every event was committed once"
    );
    assert!(
        transactions < N as f64,
        "{N} events took {transactions} transactions: none shared a commit"
    );
    receiver.wait_for(N, Duration::from_secs(30)).await;
    app.outbox_drained().await;
    let ids = receiver.event_ids();
    assert_eq!(ids.len(), N, "no event arrived twice");
    assert_eq!(ids.into_iter().collect::<HashSet<_>>().len(), N);
}

/// What the upstream was answered, attempt by attempt: the status and any `Retry-After`.
type Answers = Arc<Mutex<Vec<(u16, Option<String>)>>>;

/// Posts `event` as the upstream does until it is acknowledged: after a refusal it waits what
/// `Retry-After` says (1 s without one), for at most a minute.
async fn deliver_like_the_upstream(s: &RelayedSession, base: &str, id: String, answers: Answers) {
    let event = s.event(&id, "message", json!({"body": id}));
    for _ in 0..60 {
        let res = post_signed(base, &s.token, &s.ingress_key, &event).await;
        let status = res.status().as_u16();
        let retry_after = res
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        answers.lock().unwrap().push((status, retry_after.clone()));
        if status == 200 {
            return;
        }
        let wait = retry_after.and_then(|v| v.parse().ok()).unwrap_or(1);
        // reason: the upstream's retry, waiting what the gateway asked
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
    panic!("{id} was never acknowledged");
}

#[tokio::test]
async fn a_postgres_restart_during_a_steady_relay_loses_nothing() {
    let postgres = OwnPostgres::start().await;
    let db = TestDb::create_on(&postgres.url()).await;
    let app = spawn_app_on(db, |_| {}).await;
    let receiver = Receiver::start().await;
    let s = Arc::new(relayed(&app, &receiver).await);
    let answers: Answers = Arc::default();

    // A steady 50 events a second for 6 s, each retried by its sender until acknowledged.
    const N: usize = 300;
    let upstream = {
        let (s, answers, base) = (s.clone(), answers.clone(), app.address.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(20));
            let mut senders = Vec::new();
            for i in 0..N {
                every.tick().await;
                let (s, answers, base) = (s.clone(), answers.clone(), base.clone());
                senders.push(tokio::spawn(async move {
                    deliver_like_the_upstream(&s, &base, format!("evt_{i}"), answers).await
                }));
            }
            for sender in senders {
                sender.await.unwrap();
            }
        })
    };
    let flowing = eventually(Duration::from_secs(10), || async {
        receiver.hits().len() >= 50
    })
    .await;
    assert!(flowing, "events flow before the restart");

    postgres.stop().await;
    let refused = eventually(Duration::from_secs(10), || async {
        answers
            .lock()
            .unwrap()
            .iter()
            .any(|(status, _)| *status == 503)
    })
    .await;
    assert!(
        refused,
        "the ingress refuses events while the database is away"
    );
    postgres.start_again().await;

    upstream.await.unwrap();
    let arrived = eventually(Duration::from_secs(60), || async {
        receiver
            .event_ids()
            .into_iter()
            .collect::<HashSet<_>>()
            .len()
            == N
    })
    .await;
    let ids = receiver.event_ids();
    let distinct: HashSet<_> = ids.iter().cloned().collect();
    let missing: Vec<_> = (0..N)
        .map(|i| format!("evt_{i}"))
        .filter(|id| !distinct.contains(id))
        .collect();
    assert!(
        arrived,
        "every acknowledged event arrives; missing: {missing:?}"
    );
    let answers = answers.lock().unwrap().clone();
    let unavailable: Vec<_> = answers.iter().filter(|(s, _)| *s == 503).collect();
    println!(
        "{N} events across a PostgreSQL restart: {} answers 503, {} deliveries for {} events",
        unavailable.len(),
        ids.len(),
        distinct.len()
    );
    assert!(
        answers
            .iter()
            .all(|(status, _)| matches!(status, 200 | 503)),
        "the ingress only acknowledges or asks for a retry: {answers:?}"
    );
    assert!(
        unavailable
            .iter()
            .all(|(_, retry_after)| retry_after.is_some()),
        "every 503 says when to retry"
    );
}
