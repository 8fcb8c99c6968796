//! A webhook receiver: an HTTP server on the test's runtime recording every delivery.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Hit {
    pub at: Instant,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Hit {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// The header's value, `""` when absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

pub struct Receiver {
    hits: Arc<Mutex<Vec<Hit>>>,
    pub url: String,
    handle: actix_web::dev::ServerHandle,
}

impl Receiver {
    /// Answers `status` to every delivery.
    pub async fn start(status: u16) -> Self {
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let shared = hits.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let status = actix_web::http::StatusCode::from_u16(status).unwrap();
        let server = HttpServer::new(move || {
            let hits = shared.clone();
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                hits.lock().unwrap().push(hit(&req, &body));
                async move { HttpResponse::build(status).finish() }
            }))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            hits,
            url: format!("http://127.0.0.1:{port}/hook"),
            handle,
        }
    }

    /// Waits until `n` deliveries arrived and returns them; fails the test if they do not
    /// arrive `within`.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Hit> {
        let arrived = crate::helpers::eventually(within, || async { self.hits().len() >= n }).await;
        let hits = self.hits();
        assert!(
            arrived,
            "{n} deliveries expected within {within:?}: {hits:?}"
        );
        hits
    }

    /// Every delivery so far, oldest first.
    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// The `event` of every delivery so far.
    pub fn events(&self) -> Vec<String> {
        self.hits()
            .iter()
            .map(|h| h.json()["event"].as_str().unwrap().to_owned())
            .collect()
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

fn hit(req: &HttpRequest, body: &[u8]) -> Hit {
    let mut headers = reqwest::header::HeaderMap::new();
    for (k, v) in req.headers() {
        headers.append(
            reqwest::header::HeaderName::from_bytes(k.as_str().as_bytes()).unwrap(),
            reqwest::header::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
        );
    }
    Hit {
        at: Instant::now(),
        headers,
        body: body.to_vec(),
    }
}
