//! The load generator of `bench/webhooks.sh`: posts signed events to the gateway's ingress as
//! the upstream does (UPSTREAM.md, Webhooks: the envelope, `X-Webhook-Hmac` = hex HMAC-SHA512
//! of the body; a refused post is retried after its `Retry-After`), receives the deliveries the
//! gateway relays, and measures each event from the moment it is posted to the moment the
//! receiver has it. Prints one line of JSON; exits 1 when an event was lost or never taken.
//!
//!   relay-load --ingress URL --key HMAC_KEY --session UPSTREAM_NAME --listen 127.0.0.1:PORT
//!              --events N (--concurrency C | --rate PER_SECOND) [--prefix ID_PREFIX]
//!
//! `--concurrency`: C senders post back to back (throughput). `--rate`: one event every
//! 1/rate s whatever the answers (latency at a steady load). The gateway must already deliver
//! the session's `message` events to `http://LISTEN/hook`.

use actix_web::{rt, web, App, HttpResponse, HttpServer};
use hmac::{Hmac, Mac};
use sha2::Sha512;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long an event may take to be taken by the ingress, retries included.
const MAX_ATTEMPTS: usize = 60;
/// How long to wait for the last deliveries once every event was taken.
const ARRIVAL_PATIENCE: Duration = Duration::from_secs(120);

struct Args {
    ingress: String,
    key: String,
    session: String,
    listen: String,
    events: usize,
    concurrency: usize,
    rate: Option<f64>,
    prefix: String,
}

impl Args {
    fn parse() -> Self {
        let raw: Vec<String> = std::env::args().skip(1).collect();
        let get = |name: &str| {
            raw.iter()
                .position(|a| a == name)
                .and_then(|i| raw.get(i + 1).cloned())
        };
        let need = |name: &str| get(name).unwrap_or_else(|| usage(&format!("{name} is required")));
        let number = |name: &str| get(name).map(|v| v.parse::<f64>().unwrap_or_else(|_| usage(name)));
        Self {
            ingress: need("--ingress"),
            key: need("--key"),
            session: need("--session"),
            listen: need("--listen"),
            events: number("--events").unwrap_or(2000.0) as usize,
            concurrency: number("--concurrency").unwrap_or(32.0) as usize,
            rate: number("--rate"),
            prefix: get("--prefix").unwrap_or_else(|| "evt_bench".into()),
        }
    }
}

fn usage(problem: &str) -> ! {
    eprintln!("relay-load: {problem}\nusage: relay-load --ingress URL --key KEY --session NAME --listen ADDR --events N (--concurrency C | --rate R) [--prefix P]");
    std::process::exit(2)
}

/// What the receiver saw.
#[derive(Default)]
struct Arrivals {
    /// Deliveries per event, by sequence number.
    count: Vec<u32>,
    /// Posted to received, one per first delivery.
    latencies: Vec<Duration>,
    last: Option<Instant>,
}

struct Shared {
    started: Instant,
    arrivals: Mutex<Arrivals>,
}

impl Shared {
    fn arrived(&self) -> usize {
        self.arrivals.lock().unwrap().latencies.len()
    }
}

async fn receive(body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let now = shared.started.elapsed();
    let event: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(event) => event,
        Err(_) => return HttpResponse::BadRequest().finish(),
    };
    let payload = &event["payload"];
    let (Some(seq), Some(sent_ns)) = (payload["seq"].as_u64(), payload["sentNs"].as_u64()) else {
        return HttpResponse::BadRequest().finish();
    };
    let mut arrivals = shared.arrivals.lock().unwrap();
    let Some(count) = arrivals.count.get_mut(seq as usize) else {
        return HttpResponse::BadRequest().finish();
    };
    *count += 1;
    if *count == 1 {
        arrivals
            .latencies
            .push(now.saturating_sub(Duration::from_nanos(sent_ns)));
        arrivals.last = Some(Instant::now());
    }
    HttpResponse::Ok().finish()
}

/// The receiver, on a thread and runtime of its own.
fn start_receiver(listen: &str, shared: Arc<Shared>) -> actix_web::dev::ServerHandle {
    let (tx, rx) = std::sync::mpsc::channel();
    let listen = listen.to_owned();
    std::thread::spawn(move || {
        rt::System::new().block_on(async move {
            let data = web::Data::from(shared);
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(data.clone())
                    .app_data(web::PayloadConfig::new(4 << 20))
                    .route("/hook", web::post().to(receive))
            })
            .workers(1)
            .disable_signals()
            .bind(&listen)
            .unwrap_or_else(|e| usage(&format!("cannot listen on {listen}: {e}")))
            .run();
            tx.send(server.handle()).unwrap();
            let _ = server.await;
        })
    });
    rx.recv().unwrap()
}

/// What the senders saw.
#[derive(Default)]
struct Sent {
    /// Answers other than 200 (each retried).
    refused: AtomicUsize,
    /// Events never taken.
    failed: AtomicUsize,
    last_ack: Mutex<Option<Instant>>,
}

struct Sender {
    args: Args,
    shared: Arc<Shared>,
    client: awc::Client,
    sent: Sent,
}

impl Sender {
    fn body(&self, seq: usize) -> Vec<u8> {
        let id = format!("{}_{seq}", self.args.prefix);
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let sent_ns = self.shared.started.elapsed().as_nanos() as u64;
        serde_json::to_vec(&serde_json::json!({
            "id": id, "timestamp": now_ms, "event": "message", "session": self.args.session,
            "metadata": {}, "me": {"id": "71111111111@c.us", "pushName": "~"},
            "payload": {"id": format!("false_1234567890@c.us_{id}"), "from": "1234567890@c.us",
                        "fromMe": false, "body": "benchmark", "seq": seq, "sentNs": sent_ns},
            "engine": "WEBJS", "environment": {"version": "2026.7.1", "tier": "PLUS"}
        }))
        .unwrap()
    }

    /// Posts event `seq` until the ingress takes it, as the upstream retries.
    async fn send(&self, seq: usize) {
        for _ in 0..MAX_ATTEMPTS {
            let body = self.body(seq);
            let mut mac = Hmac::<Sha512>::new_from_slice(self.args.key.as_bytes()).unwrap();
            mac.update(&body);
            let signature = hex::encode(mac.finalize().into_bytes());
            let answer = self
                .client
                .post(&self.args.ingress)
                .insert_header(("content-type", "application/json"))
                .insert_header(("x-webhook-hmac", signature))
                .insert_header(("x-webhook-hmac-algorithm", "sha512"))
                .send_body(body)
                .await;
            let retry_after = match answer {
                Ok(mut res) => {
                    let _ = res.body().await;
                    if res.status() == 200 {
                        *self.sent.last_ack.lock().unwrap() = Some(Instant::now());
                        return;
                    }
                    res.headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok()?.parse().ok())
                        .unwrap_or(1)
                }
                Err(_) => 1,
            };
            self.sent.refused.fetch_add(1, Ordering::Relaxed);
            rt::time::sleep(Duration::from_secs(retry_after)).await;
        }
        self.sent.failed.fetch_add(1, Ordering::Relaxed);
    }
}

/// Posts every event: `concurrency` senders back to back, or one every 1/rate s.
async fn send_all(sender: Rc<Sender>) {
    let n = sender.args.events;
    let mut tasks = Vec::new();
    if let Some(rate) = sender.args.rate {
        let mut tick = rt::time::interval(Duration::from_secs_f64(1.0 / rate));
        for seq in 0..n {
            tick.tick().await;
            let sender = sender.clone();
            tasks.push(rt::spawn(async move { sender.send(seq).await }));
        }
    } else {
        let next = Rc::new(AtomicUsize::new(0));
        for _ in 0..sender.args.concurrency {
            let (sender, next) = (sender.clone(), next.clone());
            tasks.push(rt::spawn(async move {
                loop {
                    let seq = next.fetch_add(1, Ordering::Relaxed);
                    if seq >= n {
                        return;
                    }
                    sender.send(seq).await;
                }
            }));
        }
    }
    for task in tasks {
        let _ = task.await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e3
}

fn report(sender: &Sender, first_send: Instant) -> bool {
    let arrivals = sender.shared.arrivals.lock().unwrap();
    let n = sender.args.events;
    let mut latencies = arrivals.latencies.clone();
    latencies.sort();
    let since_first = |at: Option<Instant>| at.map_or(f64::NAN, |at| (at - first_send).as_secs_f64());
    let acked_secs = since_first(*sender.sent.last_ack.lock().unwrap());
    let relayed_secs = since_first(arrivals.last);
    let missing = arrivals.count.iter().filter(|c| **c == 0).count();
    let duplicates: u32 = arrivals.count.iter().map(|c| c.saturating_sub(1)).sum();
    let failed = sender.sent.failed.load(Ordering::Relaxed);
    println!(
        "{}",
        serde_json::json!({
            "events": n,
            "mode": sender.args.rate.map_or(format!("{} senders", sender.args.concurrency), |r| format!("{r}/s")),
            "ingress_events_per_s": (n as f64 / acked_secs).round(),
            "end_to_end_events_per_s": (n as f64 / relayed_secs).round(),
            "p50_ms": (percentile(&latencies, 0.50) * 10.0).round() / 10.0,
            "p99_ms": (percentile(&latencies, 0.99) * 10.0).round() / 10.0,
            "max_ms": (percentile(&latencies, 1.0) * 10.0).round() / 10.0,
            "refused_answers": sender.sent.refused.load(Ordering::Relaxed),
            "never_taken": failed,
            "missing": missing,
            "duplicates": duplicates,
            "generator_cpu_s": own_cpu_secs(),
        })
    );
    missing == 0 && failed == 0
}

/// CPU time (user + system) this process has used, from /proc/self/stat (fields 14 and 15,
/// counted after the command name), in seconds at the usual 100 ticks per second.
fn own_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit(") ").next().unwrap_or_default();
    let ticks: Vec<f64> = after_name
        .split(' ')
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse().ok())
        .collect();
    ticks.iter().sum::<f64>() / 100.0
}

fn main() {
    let args = Args::parse();
    let shared = Arc::new(Shared {
        started: Instant::now(),
        arrivals: Mutex::new(Arrivals {
            count: vec![0; args.events],
            ..Arrivals::default()
        }),
    });
    let receiver = start_receiver(&args.listen, shared.clone());
    let connections = args.concurrency.max(64);
    let ok = rt::System::new().block_on(async move {
        let client = awc::Client::builder()
            .connector(awc::Connector::new().limit(connections))
            .timeout(Duration::from_secs(30))
            .finish();
        let sender = Rc::new(Sender {
            args,
            shared: shared.clone(),
            client,
            sent: Sent::default(),
        });
        let first_send = Instant::now();
        send_all(sender.clone()).await;
        let deadline = Instant::now() + ARRIVAL_PATIENCE;
        while shared.arrived() < sender.args.events && Instant::now() < deadline {
            rt::time::sleep(Duration::from_millis(20)).await; // poll
        }
        let ok = report(&sender, first_send);
        receiver.stop(false).await;
        ok
    });
    std::process::exit(if ok { 0 } else { 1 });
}
