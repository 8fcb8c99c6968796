//! The event log (issue 15 part 1): `GET /v1/events`, the SSE stream and the WebSocket, end to
//! end. Events are fired through the simulator's control API: the simulator posts them to the
//! gateway's ingress, which every session is registered with for every event, exactly as the
//! upstream would. Everything else goes through the public API.

use crate::helpers::*;
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

const PATIENCE: Duration = Duration::from_secs(10);
/// The event the tests fire: nothing else in a test sends it.
const FIRED: &str = "poll.vote";
const STREAM: &str = "/v1/events/stream";

/// Fires `poll.vote` with `{"n": n}` on the simulator's session `upstream`.
async fn fire(app: &TestApp, upstream: &str, n: u64) {
    let res = app
        .sim_post(
            &format!("/_sim/sessions/{upstream}/events"),
            json!({"event": FIRED, "payload": {"n": n}}),
        )
        .await;
    assert_eq!(res.status(), 201, "firing {n}");
}

/// The `n` of fired events, in the order given.
fn ns<'a>(events: impl IntoIterator<Item = &'a Value>) -> Vec<u64> {
    events
        .into_iter()
        .map(|e| e["payload"]["n"].as_u64().unwrap())
        .collect()
}

fn of_blocks(blocks: &[Block]) -> Vec<Value> {
    blocks.iter().map(Block::json).collect()
}

/// `GET /v1/events?<query>` as the tenant.
async fn page(app: &TestApp, tenant: &TestTenant, query: &str) -> Answer {
    app.get_as(tenant, &format!("/v1/events?{query}")).await
}

/// Reads the tenant's log with `query` until `done` holds for the events it answers (or
/// patience runs out); answers the last read.
async fn read_until(
    app: &TestApp,
    tenant: &TestTenant,
    query: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let events = page(app, tenant, query).await.json["events"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if done(&events) || tokio::time::Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await; // poll
    }
}

/// Waits until the tenant's log holds `n` fired events; answers them.
async fn logged(app: &TestApp, tenant: &TestTenant, n: usize) -> Vec<Value> {
    let query = format!("event={FIRED}&limit=500");
    let found = read_until(app, tenant, &query, |e| e.len() >= n).await;
    assert!(
        found.len() >= n,
        "{} of {n} events were logged",
        found.len()
    );
    found
}

/// The tenant's SSE stream of fired events, `query` added, resuming from `last_id`.
async fn open(app: &TestApp, tenant: &TestTenant, query: &str, last_id: Option<&str>) -> SseStream {
    let mut request = app.call(
        tenant,
        Method::GET,
        &format!("{STREAM}?event={FIRED}{query}"),
    );
    if let Some(id) = last_id {
        request = request.header("last-event-id", id);
    }
    let stream = SseStream::open(request).await;
    assert_eq!(stream.status, 200);
    assert_eq!(stream.content_type, "text/event-stream");
    stream
}

/// A key of the tenant's made by the admin API with `body` (`scopes`, `sessions`, `mode`);
/// answers the key and its id.
async fn key_of(app: &TestApp, tenant: &TestTenant, body: Value) -> (TestTenant, String) {
    let path = format!("/admin/v1/tenants/{}/keys", tenant.id);
    let (status, key) = app.admin(Method::POST, &path, Some(body)).await;
    assert_eq!(status, 201, "{key}");
    let id = key["id"].as_str().unwrap().to_owned();
    let as_key = TestTenant {
        key: key["key"].as_str().unwrap().to_owned(),
        ..tenant.clone()
    };
    (as_key, id)
}

#[tokio::test]
async fn the_log_is_read_oldest_first_page_by_page_each_event_once() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let upstream = app.working_session(&tenant, "default").await;
    for n in 0..5 {
        fire(&app, &upstream, n).await;
    }
    let all = logged(&app, &tenant, 5).await;
    assert_eq!(ns(&all), [0, 1, 2, 3, 4]);
    for e in &all {
        assert_eq!(e["event"], FIRED);
        assert_eq!(e["session"], "default", "the tenant's name for it");
        assert!(e["id"].as_str().is_some_and(|id| !id.is_empty()));
        assert!(e["timestamp"].is_number() && e["cursor"].is_string(), "{e}");
        assert!(
            !e.to_string().contains(&upstream),
            "the upstream name leaked: {e}"
        );
    }

    let mut read = Vec::new();
    let mut after = "0_0".to_owned();
    for _ in 0..10 {
        let got = page(
            &app,
            &tenant,
            &format!("event={FIRED}&limit=2&after={after}"),
        )
        .await;
        assert_eq!(got.status, 200, "after={after}: {got:?}");
        let events = got.json["events"].as_array().unwrap().clone();
        after = got.json["next"].as_str().unwrap().to_owned();
        if events.is_empty() {
            break;
        }
        assert!(events.len() <= 2);
        read.extend(events);
    }
    assert_eq!(ns(&read), [0, 1, 2, 3, 4], "every event once, in order");
    // `next` of the last page is where to read on: what is fired now is all that comes.
    fire(&app, &upstream, 5).await;
    let later = read_until(&app, &tenant, &format!("after={after}"), |e| {
        e.iter().any(|e| e["event"] == FIRED)
    })
    .await;
    let fired: Vec<&Value> = later.iter().filter(|e| e["event"] == FIRED).collect();
    assert_eq!(ns(fired), [5]);
}

#[tokio::test]
async fn a_stream_resumed_with_its_last_id_gets_exactly_what_it_missed() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let upstream = app.working_session(&tenant, "default").await;

    // Dropped before anything came: the id it opened with is where it resumes from.
    let mut first = open(&app, &tenant, "", None).await;
    let opening = first.block(PATIENCE).await.expect("the stream opens");
    assert!(opening.data.is_none(), "an id alone: {opening:?}");
    let opened_at = opening.id.expect("the position it starts from");
    drop(first);
    fire(&app, &upstream, 0).await;
    fire(&app, &upstream, 1).await;
    logged(&app, &tenant, 2).await;

    let mut stream = open(&app, &tenant, "", Some(&opened_at)).await;
    let got = stream.events(2, PATIENCE).await;
    assert_eq!(ns(&of_blocks(&got)), [0, 1]);
    for block in &got {
        assert_eq!(block.event.as_deref(), Some(FIRED));
        assert_eq!(block.id.as_deref(), block.json()["cursor"].as_str());
    }
    // Then live.
    for n in 2..5 {
        fire(&app, &upstream, n).await;
    }
    let live = stream.events(3, PATIENCE).await;
    assert_eq!(ns(&of_blocks(&live)), [2, 3, 4]);
    let last_id = stream.last_id.clone().unwrap();
    drop(stream);

    fire(&app, &upstream, 5).await;
    fire(&app, &upstream, 6).await;
    logged(&app, &tenant, 7).await;
    // As a reconnecting EventSource: the URL it first opened (an older `after`) and the
    // `Last-Event-ID` of what it received last, which wins.
    let older = got[0].id.clone().unwrap();
    let mut resumed = open(&app, &tenant, &format!("&after={older}"), Some(&last_id)).await;
    let missed = resumed.events(2, PATIENCE).await;
    assert_eq!(ns(&of_blocks(&missed)), [5, 6], "exactly what was missed");
    fire(&app, &upstream, 7).await;
    let next = resumed.events(1, PATIENCE).await;
    assert_eq!(ns(&of_blocks(&next)), [7], "nothing twice, nothing lost");

    // Without a cursor, a stream starts with what comes from now on.
    let mut fresh = open(&app, &tenant, "", None).await;
    fresh.block(PATIENCE).await.expect("the stream opens");
    fire(&app, &upstream, 8).await;
    let now = fresh.events(1, PATIENCE).await;
    assert_eq!(ns(&of_blocks(&now)), [8]);
}

#[tokio::test]
async fn an_idle_stream_keeps_alive_and_says_where_it_is() {
    let app = spawn_app_with(|vars| {
        vars.insert("WAGW_EVENT_KEEPALIVE_SECS".into(), "1".into());
    })
    .await;
    let tenant = app.tenant().await;
    let mut stream = open(&app, &tenant, "", None).await;
    stream.block(PATIENCE).await.expect("the stream opens");
    let alive = stream
        .block(Duration::from_secs(5))
        .await
        .expect("a keep-alive");
    assert!(alive.data.is_none(), "{alive:?}");
    assert_eq!(alive.comments, ["keep-alive"]);
    assert!(alive.id.is_some());
}

/// Reads text frames (skipping pings) until `n` came; each is one event's JSON.
async fn frames(
    socket: &mut (impl futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
              + Unpin),
    n: usize,
) -> Vec<Value> {
    let mut got = Vec::new();
    while got.len() < n {
        let frame = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .unwrap_or_else(|_| panic!("{} of {n} frames came: {got:?}", got.len()))
            .expect("the socket is open")
            .expect("a frame");
        if let Message::Text(text) = frame {
            got.push(serde_json::from_str(text.as_str()).unwrap());
        }
    }
    got
}

#[tokio::test]
async fn a_websocket_with_the_engines_query_sends_one_envelope_per_frame() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let upstream = app.working_session(&tenant, "default").await;
    let base = format!("ws://127.0.0.1:{}/v1/ws", app.port);
    let url = format!(
        "{base}?session=default&events={FIRED},message&x-api-key={}",
        tenant.key
    );
    let (mut socket, answer) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(answer.status(), 101);
    fire(&app, &upstream, 0).await;
    // `message` and `message.any`: only the first was asked for.
    app.sim_incoming(&upstream, "hello").await;
    fire(&app, &upstream, 1).await;
    let got = frames(&mut socket, 3).await;
    let names: Vec<&str> = got.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(names, [FIRED, "message", FIRED]);
    assert_eq!(got[1]["payload"]["body"], "hello");
    assert!(got.iter().all(|e| e["session"] == "default"));
    assert!(got.iter().all(|e| e["cursor"].is_string()));
    socket.close(None).await.unwrap();

    // `after=` replays (the key in the header this time), then live.
    let after = got[0]["cursor"].as_str().unwrap();
    let mut request = format!("{base}?session=*&events=*&after={after}")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("x-api-key", tenant.key.parse().unwrap());
    let (mut replaying, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let replayed = frames(&mut replaying, 3).await;
    let names: Vec<&str> = replayed
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["message", "message.any", FIRED],
        "everything after the cursor"
    );
    fire(&app, &upstream, 2).await;
    assert_eq!(ns(&frames(&mut replaying, 1).await), [2]);

    // `Authorization: Bearer` as the engine allows; a wrong key is refused before the upgrade.
    let after = replayed[2]["cursor"].as_str().unwrap();
    let bearer = |key: &str| {
        let mut request = format!("{base}?session=default&events={FIRED}&after={after}")
            .into_client_request()
            .unwrap();
        let value = format!("Bearer {key}").parse().unwrap();
        request.headers_mut().insert("authorization", value);
        request
    };
    let (mut by_bearer, _) = tokio_tungstenite::connect_async(bearer(&tenant.key))
        .await
        .unwrap();
    assert_eq!(ns(&frames(&mut by_bearer, 1).await), [2]);
    match tokio_tungstenite::connect_async(bearer("wagw_not-a-key")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(answer)) => {
            assert_eq!(answer.status(), 401)
        }
        other => panic!("a wrong bearer key was not refused: {other:?}"),
    }
}

#[tokio::test]
async fn a_tenant_sees_only_its_own_events_its_keys_sessions_and_its_keys_mode() {
    let app = spawn_app().await;
    let a = app.tenant().await;
    let b = app.tenant().await;
    let a_one = app.working_session(&a, "one").await;
    let a_two = app.working_session(&a, "two").await;
    let b_one = app.working_session(&b, "one").await;
    fire(&app, &a_one, 1).await;
    fire(&app, &a_two, 2).await;
    fire(&app, &b_one, 100).await;
    let seen_by_a = logged(&app, &a, 2).await;
    let seen_by_b = logged(&app, &b, 1).await;
    let mut of_a = ns(&seen_by_a);
    of_a.sort();
    assert_eq!(of_a, [1, 2], "A never sees B's");
    assert_eq!(ns(&seen_by_b), [100], "B never sees A's");
    // B naming A's session names gets its own session of that name, nothing of A's.
    let named = page(&app, &b, &format!("session=two&event={FIRED}")).await;
    assert_eq!(named.json["events"], json!([]));

    // A key limited to session `one` sees only it, in the log and on the stream.
    let (limited, _) = key_of(
        &app,
        &a,
        json!({"name": "one only", "scopes": ["events:read"], "sessions": ["one"]}),
    )
    .await;
    let only_one = page(&app, &limited, &format!("event={FIRED}")).await;
    assert_eq!(ns(only_one.json["events"].as_array().unwrap()), [1]);
    let refused = page(&app, &limited, "session=two").await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(refused.message().contains("two"));
    // From where its page left off (a stream started live starts where the log is settled,
    // which a transaction running elsewhere on the server may hold back).
    let from = only_one.json["next"].as_str().unwrap().to_owned();
    let mut stream = open(&app, &limited, &format!("&after={from}"), None).await;
    stream.block(PATIENCE).await.expect("the stream opens");
    fire(&app, &a_two, 3).await;
    fire(&app, &a_one, 4).await;
    assert_eq!(ns(&of_blocks(&stream.events(1, PATIENCE).await)), [4]);

    // A test key sees none of the live events, only its own test sessions'.
    let (test, _) = key_of(
        &app,
        &a,
        json!({"name": "ci", "scopes": ["*"], "mode": "test"}),
    )
    .await;
    let created = app
        .post_as(&test, "/v1/sessions", json!({"name": "one"}))
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    // Its simulator scans it by itself once the QR code was fetched: WORKING, an event.
    let qr = app.get_as(&test, "/v1/one/auth/qr").await;
    assert_eq!(qr.status, 200, "{qr:?}");
    let test_log = read_until(&app, &test, "", |e| !e.is_empty()).await;
    assert!(
        !test_log.is_empty(),
        "the test session's own events are logged"
    );
    assert!(
        test_log.iter().all(|e| e["event"] == "session.status"),
        "{test_log:?}"
    );
    let live_for_test = page(&app, &test, &format!("event={FIRED}")).await;
    assert_eq!(live_for_test.json["events"], json!([]));
    let live_log = page(&app, &a, "event=session.status&session=one&limit=500").await;
    let test_ids: Vec<&Value> = test_log.iter().map(|e| &e["id"]).collect();
    assert!(
        live_log.json["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| !test_ids.contains(&&e["id"])),
        "the live key never sees the test session's events"
    );
}

#[tokio::test]
async fn bad_cursors_limits_and_names_are_refused_in_the_error_shape() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    for query in [
        "after=nonsense",
        "after=1_2_3",
        "after=-1_0",
        "after=1_-1",
        "after=99999999999999999999999_1",
        &format!("after={}", "9".repeat(5000)),
        "after=1_1&after=1_2",
        "limit=0",
        "limit=501",
        "limit=-5",
        "limit=abc",
        "limit=99999999999999999999999999",
        "limit=10&limit=20",
        "event=not.an.event",
        "event=message,nope",
        "session=..%2Fetc",
        "session=",
        "bogus=1",
    ] {
        let got = page(&app, &tenant, query).await;
        assert_eq!(got.status, 400, "{query}: {got:?}");
        assert_eq!(got.json["statusCode"], 400, "{query}");
        assert_eq!(got.json["error"], "Bad Request", "{query}");
        assert!(!got.message().is_empty(), "{query}");
        assert!(got.message().len() < 2000, "{query}: the echo is bounded");
    }
    let too_many: Vec<String> = (0..65).map(|i| format!("s{i}")).collect();
    let got = page(&app, &tenant, &format!("session={}", too_many.join(","))).await;
    assert_eq!(got.status, 400);
    // The stream checks its query and its Last-Event-ID the same way, before streaming.
    let bad_id = SseStream::open(
        app.call(&tenant, Method::GET, STREAM)
            .header("last-event-id", "forged<script>"),
    )
    .await;
    assert_eq!(bad_id.status, 400);
    assert!(bad_id.text().await.contains("Last-Event-ID"));
    let bad_query =
        SseStream::open(app.call(&tenant, Method::GET, &format!("{STREAM}?limit=5"))).await;
    assert_eq!(bad_query.status, 400, "the stream takes no limit");
    // A WebSocket route answered without an upgrade says so, in the error shape.
    let plain = app.get_as(&tenant, "/v1/ws").await;
    assert_eq!(plain.status, 400, "{plain:?}");
    assert!(plain.message().contains("WebSocket"));
    // Good values pass.
    let ok = page(&app, &tenant, "after=0_0&limit=500&session=*&event=*").await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(ok.json["next"].is_string());
}

#[tokio::test]
async fn the_log_needs_the_events_read_scope() {
    let app = spawn_app().await;
    let tenant = app
        .tenant_with(json!({"plan": "custom", "quota": {}}), &["sessions:read"])
        .await;
    for path in ["/v1/events", STREAM, "/v1/ws"] {
        let got = app.get_as(&tenant, path).await;
        assert_eq!(got.status, 403, "{path}: {got:?}");
        assert!(got.message().contains("events:read"), "{path}");
    }
    let none = answer(app.client.get(app.url("/v1/events"))).await;
    assert_eq!(none.status, 401);
}

#[tokio::test]
async fn the_key_is_taken_in_the_query_on_the_stream_routes_only() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let upstream = app.working_session(&tenant, "default").await;
    app.clear_sim_log().await;
    let key = &tenant.key;
    for (method, path) in [
        (Method::GET, format!("/v1/events?x-api-key={key}")),
        (Method::GET, format!("/v1/sessions?x-api-key={key}")),
        (Method::GET, format!("/v1/me?x-api-key={key}")),
        (Method::POST, format!("/v1/sendText?x-api-key={key}")),
    ] {
        let body = json!({"session": "default", "chatId": "123", "text": "hi"});
        let got = answer(app.client.request(method, app.url(&path)).json(&body)).await;
        assert_eq!(got.status, 401, "{path}: {got:?}");
        assert!(
            got.message().contains("header"),
            "{path}: {}",
            got.message()
        );
        assert!(!got.json.to_string().contains(key.as_str()));
    }
    assert!(
        app.sim_log().await.is_empty(),
        "nothing reached the upstream"
    );

    // On the stream, the query key works (as a browser's EventSource sends it).
    let mut stream = SseStream::open(
        app.client
            .get(app.url(&format!("{STREAM}?event={FIRED}&x-api-key={key}"))),
    )
    .await;
    assert_eq!(stream.status, 200);
    stream.block(PATIENCE).await.expect("the stream opens");
    fire(&app, &upstream, 1).await;
    assert_eq!(ns(&of_blocks(&stream.events(1, PATIENCE).await)), [1]);
    // A wrong one there is refused like any wrong key.
    let wrong = SseStream::open(
        app.client
            .get(app.url(&format!("{STREAM}?x-api-key=wagw_nope"))),
    )
    .await;
    assert_eq!(wrong.status, 401);
}

#[tokio::test]
async fn a_key_in_the_query_never_reaches_the_log() {
    let db = TestDb::create().await;
    let sim = wa_gateway::sim::Simulator::start(wa_gateway::sim::SimOptions {
        key: Some(UPSTREAM_KEY.to_owned()),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut vars = base_vars(&db, &sim.url());
    vars.insert("RUST_LOG".into(), "debug".into());
    let process = GatewayProcess::start(&vars).await;
    let client = http_client();
    let p = provision(&client, &process.address, "logged", &["*"]).await;
    let key = p.api_key();
    let mut stream =
        SseStream::open(client.get(process.url(&format!("{STREAM}?x-api-key={key}")))).await;
    assert_eq!(stream.status, 200);
    stream.block(PATIENCE).await.expect("the stream opens");
    let ws = format!("ws://127.0.0.1:{}/v1/ws?x-api-key={key}", process.port);
    let (socket, answer) = tokio_tungstenite::connect_async(ws).await.unwrap();
    assert_eq!(answer.status(), 101);
    let refused = client
        .get(process.url(&format!("/v1/events?x-api-key={key}")))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    drop((stream, socket));
    let served = eventually(PATIENCE, || async {
        process.logs().matches("served").count() >= 3
    })
    .await;
    assert!(served, "the requests were logged:\n{}", process.logs());
    let logs = process.logs();
    let secret = key.rsplit('_').next().unwrap();
    assert!(!logs.contains(secret), "the key is in the log:\n{logs}");
    assert!(
        !logs.contains("x-api-key="),
        "a query with the key is in the log"
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_revoked_key_or_a_suspended_tenant_ends_its_streams() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let (streamer, key_id) = key_of(
        &app,
        &tenant,
        json!({"name": "tail", "scopes": ["events:read"]}),
    )
    .await;
    let mut stream = open(&app, &streamer, "", None).await;
    stream.block(PATIENCE).await.expect("the stream opens");
    let ws = format!(
        "ws://127.0.0.1:{}/v1/ws?x-api-key={}",
        app.port, streamer.key
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(ws).await.unwrap();
    let path = format!("/admin/v1/tenants/{}/keys/{key_id}", tenant.id);
    assert_eq!(app.admin(Method::DELETE, &path, None).await.0, 204);
    let last = stream.ends_within(PATIENCE).await.expect("the stream ends");
    assert!(
        last.iter().any(|c| c.contains("invalid API key")),
        "{last:?}"
    );
    let closed = tokio::time::timeout(PATIENCE, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("the socket ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("the socket is closed");
    assert_eq!(closed.expect("a close frame").code, CloseCode::Policy);

    // A suspended tenant's stream ends too.
    let mut stream = open(&app, &tenant, "", None).await;
    stream.block(PATIENCE).await.expect("the stream opens");
    let path = format!("/admin/v1/tenants/{}", tenant.id);
    let (status, _) = app
        .admin(Method::PATCH, &path, Some(json!({"status": "suspended"})))
        .await;
    assert_eq!(status, 200);
    let last = stream.ends_within(PATIENCE).await.expect("the stream ends");
    assert!(last.iter().any(|c| c.contains("suspended")), "{last:?}");
}

/// The classic outbox-cursor loss: two transactions write events, the later one commits
/// first, a reader moves its cursor past it, and the earlier one's event commits behind the
/// cursor. The test holds a row lock the earlier transaction needs (as a slow transaction
/// would), so the two commit out of order for certain; the second event goes to another
/// replica (each replica's ingress commits its events one batch after the other).
#[tokio::test]
async fn events_of_transactions_committed_out_of_order_are_all_read() {
    let app = spawn_app().await;
    let replica = spawn_replica(&app).await;
    let receiver = Receiver::start().await;
    let tenant = app.tenant().await;
    let slow = app.working_session(&tenant, "slow").await;
    let fast = app.working_session(&tenant, "fast").await;
    // The slow session's event makes a delivery, whose check of its subscription waits on
    // the lock; the fast session's has no subscription and waits on nothing.
    app.subscribe(
        &tenant,
        "slow",
        subscription(&receiver.url, &[FIRED], None, DEFAULT_POLICY),
    )
    .await;
    let (slow_token, slow_key) = app.ingress(&slow).await;
    let (fast_token, fast_key) = app.ingress(&fast).await;
    let before = page(&app, &tenant, &format!("event={FIRED}")).await;
    let start = before.json["next"].as_str().unwrap().to_owned();
    let mut stream = open(&app, &tenant, "", None).await;
    stream.block(PATIENCE).await.expect("the stream opens");

    let mut lock = PgConnection::connect(app.db.url()).await.unwrap();
    sqlx::query("BEGIN").execute(&mut lock).await.unwrap();
    sqlx::query("SELECT 1 FROM webhook_subscriptions WHERE tenant_id = $1::uuid FOR UPDATE")
        .bind(&tenant.id)
        .execute(&mut lock)
        .await
        .unwrap();
    let event = |id: &str, upstream: &str| {
        json!({"id": id, "timestamp": chrono::Utc::now().timestamp_millis(), "event": FIRED,
               "session": upstream, "payload": {"n": if id == "first" { 1 } else { 2 }}})
    };
    let address = app.address.clone();
    let first = event("first", &slow);
    let slow_post =
        tokio::spawn(async move { post_signed(&address, &slow_token, &slow_key, &first).await });
    let waiting = eventually(PATIENCE, || async {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        waiting > 0
    })
    .await;
    assert!(waiting, "the first event's transaction waits on the lock");
    let second = post_signed(
        &replica.address,
        &fast_token,
        &fast_key,
        &event("second", &fast),
    )
    .await;
    assert_eq!(second.status(), 200, "the second event committed first");
    // Committed, but behind a transaction still running: not read yet.
    let meanwhile = page(&app, &tenant, &format!("event={FIRED}&after={start}")).await;
    assert_eq!(meanwhile.json["events"], json!([]), "{meanwhile:?}");
    let read_on = meanwhile.json["next"].as_str().unwrap().to_owned();

    sqlx::query("COMMIT").execute(&mut lock).await.unwrap();
    assert_eq!(slow_post.await.unwrap().status(), 200);
    let both = eventually(PATIENCE, || async {
        let got = page(&app, &tenant, &format!("event={FIRED}&after={read_on}")).await;
        got.json["events"].as_array().is_some_and(|e| e.len() == 2)
    })
    .await;
    assert!(both, "both events are read after the cursor the reader had");
    let got = page(&app, &tenant, &format!("event={FIRED}&after={read_on}")).await;
    assert_eq!(
        ns(got.json["events"].as_array().unwrap()),
        [1, 2],
        "in commit-safe order"
    );
    let streamed = stream.events(2, PATIENCE).await;
    assert_eq!(ns(&of_blocks(&streamed)), [1, 2]);
}

#[tokio::test]
async fn an_adopted_session_is_registered_for_every_event_before_the_adoption_answers() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    // A phone paired on the upstream before the gateway.
    let created = app
        .client
        .post(format!("{}/v1/sessions", app.sim().url()))
        .header("x-rapidapi-key", UPSTREAM_KEY)
        .header("x-rapidapi-host", wa_gateway::sim::DEFAULT_HOST)
        .json(&json!({"name": "paired"}))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success());
    let (status, body) = app
        .admin(
            Method::POST,
            "/admin/v1/sessions/adopt",
            Some(json!({"upstream_name": "paired", "tenant_id": tenant.id, "name": "sales"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let hooks = app.sim_session("paired").await["webhooks"].clone();
    assert_eq!(hooks.as_array().map(Vec::len), Some(1), "{hooks}");
    assert_eq!(hooks[0]["events"], json!(["*"]));
    fire(&app, "paired", 9).await;
    let got = logged(&app, &tenant, 1).await;
    assert_eq!(got[0]["session"], "sales");
}
