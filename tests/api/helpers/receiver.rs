//! A webhook receiver started by the test: an HTTP server that records every request and
//! answers what the test tells it to.

use super::eventually;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub at: Instant,
    pub method: String,
    pub path: String,
    /// By lowercase name.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Hit {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON delivery")
    }

    /// A header's value (empty when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
}

#[derive(Default)]
struct ReceiverState {
    hits: Mutex<Vec<Hit>>,
    /// Answer 503 to this many requests first.
    fail_first: AtomicUsize,
    /// The answer after that.
    status: AtomicU16,
    /// How long each answer takes, in milliseconds.
    delay_ms: AtomicU64,
    /// A `Retry-After` sent with every answer, when set.
    retry_after: Mutex<Option<String>>,
    /// Requests being answered now, and the most there ever were at once.
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

/// An HTTP server recording every request, on its own thread and actix runtime.
pub struct Receiver {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// `{base}/hook`
    pub url: String,
    state: Arc<ReceiverState>,
    handle: actix_web::dev::ServerHandle,
}

impl Receiver {
    /// Answers 200 to everything.
    pub async fn start() -> Self {
        Self::answering(200).await
    }

    /// Answers `status` to everything (until told otherwise).
    pub async fn answering(status: u16) -> Self {
        let state = Arc::new(ReceiverState {
            status: AtomicU16::new(status),
            ..Default::default()
        });
        let (tx, rx) = tokio::sync::oneshot::channel();
        let shared = state.clone();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let data = web::Data::from(shared);
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .default_service(web::to(record))
                })
                .workers(1)
                .disable_signals()
                .bind("127.0.0.1:0")
                .unwrap();
                let port = server.addrs()[0].port();
                let server = server.run();
                let _ = tx.send((port, server.handle()));
                let _ = server.await;
            })
        });
        let (port, handle) = rx.await.unwrap();
        Self {
            base: format!("http://127.0.0.1:{port}"),
            url: format!("http://127.0.0.1:{port}/hook"),
            state,
            handle,
        }
    }

    /// Answers 503 to the next `n` requests, then as before.
    pub fn fail_first(&self, n: usize) {
        self.state.fail_first.store(n, Ordering::SeqCst);
    }

    /// Takes `delay` over every answer from now on (recorded on arrival).
    pub fn answer_after(&self, delay: Duration) {
        self.state
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Sends `Retry-After: value` with every answer from now on.
    pub fn retry_after(&self, value: &str) {
        *self.state.retry_after.lock().unwrap() = Some(value.to_owned());
    }

    /// Answers `status` from now on.
    pub fn answer_with(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    /// The most requests this receiver was answering at once.
    pub fn most_in_flight(&self) -> usize {
        self.state.most_in_flight.load(Ordering::SeqCst)
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().unwrap().clone()
    }

    /// Waits until `n` requests arrived and returns them all; fails the test if they do not
    /// arrive within `patience`.
    pub async fn wait_for(&self, n: usize, patience: Duration) -> Vec<Hit> {
        let arrived = eventually(patience, || async move { self.hits().len() >= n }).await;
        let hits = self.hits();
        assert!(
            arrived,
            "{n} requests expected within {patience:?}: {hits:?}"
        );
        hits
    }

    /// The requests that came to `path`, in arrival order.
    pub fn hits_at(&self, path: &str) -> Vec<Hit> {
        self.hits().into_iter().filter(|h| h.path == path).collect()
    }

    /// The `event` of every delivery, in arrival order.
    pub fn events(&self) -> Vec<String> {
        self.field("event")
    }

    /// The event `id` of every delivery, in arrival order.
    pub fn event_ids(&self) -> Vec<String> {
        self.field("id")
    }

    fn field(&self, name: &str) -> Vec<String> {
        self.hits()
            .iter()
            .map(|h| h.json()[name].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

async fn record(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<ReceiverState>,
) -> HttpResponse {
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    state.hits.lock().unwrap().push(Hit {
        at: Instant::now(),
        method: req.method().to_string(),
        path: req.path().to_owned(),
        headers,
        body: body.to_vec(),
    });
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.most_in_flight.fetch_max(now, Ordering::SeqCst);
    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        // reason: a slow receiver is what the test asks for
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    let failing = state
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let mut answer = if failing {
        HttpResponse::ServiceUnavailable()
    } else {
        HttpResponse::build(
            actix_web::http::StatusCode::from_u16(state.status.load(Ordering::SeqCst)).unwrap(),
        )
    };
    if let Some(value) = state.retry_after.lock().unwrap().clone() {
        answer.insert_header(("retry-after", value));
    }
    answer.finish()
}
