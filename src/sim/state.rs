//! The simulator's memory: sessions with their lifecycle, what each session keeps (groups,
//! channels, presence, webhooks), the request log, faults and the plan counters. All of it is
//! lost on restart, as the upstream's pending retries are.

use super::faults::Fault;
use super::log::LogEntry;
use super::webhooks::{Delivery, Registration};
use super::SimOptions;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Stopped,
    Starting,
    ScanQrCode,
    Working,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Stopped => "STOPPED",
            Status::Starting => "STARTING",
            Status::ScanQrCode => "SCAN_QR_CODE",
            Status::Working => "WORKING",
            Status::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "STOPPED" => Status::Stopped,
            "STARTING" => Status::Starting,
            "SCAN_QR_CODE" => Status::ScanQrCode,
            "WORKING" => Status::Working,
            "FAILED" => Status::Failed,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    pub id: String,
    pub push_name: String,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub name: String,
    pub status: Status,
    /// The session's `config` as given at creation (its `metadata` is echoed in events).
    pub config: Value,
    /// Set by a scan, kept by `stop` (a restart needs no new scan), cleared by `logout`.
    pub me: Option<Me>,
    /// The phone a pairing code was asked for: it becomes `me` at the scan.
    pub pairing_phone: Option<String>,
    /// Bumped on every status change, so a timer armed for an older state does nothing.
    pub generation: u64,
    /// When the current run of QR codes began (entering SCAN_QR_CODE).
    pub qr_since: Option<Instant>,
    pub qr_fetched: bool,
    pub webhooks: Vec<Registration>,
    pub groups: BTreeMap<String, Value>,
    pub channels: BTreeMap<String, Value>,
    /// The session's own presence (`online`, `offline`).
    pub presence: String,
    /// Per chat: the last presence shown in it.
    pub chat_presence: BTreeMap<String, String>,
}

impl Session {
    pub fn new(name: String, config: Value) -> Self {
        Self {
            name,
            status: Status::Stopped,
            config,
            me: None,
            pairing_phone: None,
            generation: 0,
            qr_since: None,
            qr_fetched: false,
            webhooks: Vec::new(),
            groups: BTreeMap::new(),
            channels: BTreeMap::new(),
            presence: "offline".into(),
            chat_presence: BTreeMap::new(),
        }
    }

    pub fn metadata(&self) -> Value {
        self.config
            .get("metadata")
            .cloned()
            .unwrap_or_else(|| json!({}))
    }

    /// The session as `GET /v1/sessions/{session}` shows it.
    pub fn info(&self) -> Value {
        let mut config = self.config.clone();
        if !config.is_object() {
            config = json!({});
        }
        if config.get("metadata").is_none() {
            config["metadata"] = json!({});
        }
        json!({
            "name": self.name,
            "status": self.status.as_str(),
            "config": config,
            "me": self.me,
            "engine": {"engine": "WEBJS"},
        })
    }

    pub fn me_id(&self) -> String {
        self.me
            .as_ref()
            .map(|m| m.id.clone())
            .unwrap_or_else(|| phone_for(&self.name) + "@c.us")
    }
}

/// A stable phone number per session name, for the account a scan "logs in".
pub fn phone_for(name: &str) -> String {
    format!(
        "7{:010}",
        crc32fast::hash(name.as_bytes()) as u64 % 10_000_000_000
    )
}

/// One second's worth of admitted calls (the per-second plan limit).
#[derive(Debug, Default)]
pub struct RateWindow {
    pub second: u64,
    pub count: u32,
}

#[derive(Debug, Default)]
pub struct MonthlyCounter {
    pub month: String,
    pub used: u64,
}

/// How many calls `/_sim/log` keeps.
pub const LOG_CAPACITY: usize = 10_000;

pub struct SimState {
    pub options: SimOptions,
    pub sessions: Mutex<BTreeMap<String, Session>>,
    /// The newest `LOG_CAPACITY` calls (a benchmark must not grow it without bound).
    pub log: Mutex<VecDeque<LogEntry>>,
    pub faults: Mutex<Vec<Fault>>,
    pub rate: Mutex<RateWindow>,
    pub monthly: Mutex<MonthlyCounter>,
    /// Bumped by `/_sim/reset`: pending retries of an older epoch are dropped.
    pub epoch: AtomicU64,
    next_id: AtomicU64,
    deliveries: Mutex<Option<UnboundedSender<Delivery>>>,
}

impl SimState {
    pub fn new(options: SimOptions, deliveries: UnboundedSender<Delivery>) -> Self {
        Self {
            options,
            sessions: Mutex::new(BTreeMap::new()),
            log: Mutex::new(VecDeque::new()),
            faults: Mutex::new(Vec::new()),
            rate: Mutex::new(RateWindow::default()),
            monthly: Mutex::new(MonthlyCounter::default()),
            epoch: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
            deliveries: Mutex::new(Some(deliveries)),
        }
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Forgets everything: sessions, log, faults, counters, pending retries.
    pub fn reset(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.sessions.lock().unwrap().clear();
        self.log.lock().unwrap().clear();
        self.faults.lock().unwrap().clear();
        *self.rate.lock().unwrap() = RateWindow::default();
        *self.monthly.lock().unwrap() = MonthlyCounter::default();
    }

    /// Closes the delivery channel: the delivery thread ends and pending retries are lost.
    pub fn close_deliveries(&self) {
        self.deliveries.lock().unwrap().take();
    }

    pub fn submit(&self, delivery: Delivery) {
        if let Some(tx) = self.deliveries.lock().unwrap().as_ref() {
            let _ = tx.send(delivery);
        }
    }

    /// Fires `event` for `session`: one delivery per registration subscribed to it.
    /// Called with the sessions lock held, so events leave in the order they happened.
    pub fn emit(&self, session: &Session, event: &str, payload: Value) {
        for registration in &session.webhooks {
            if !registration.wants(event) {
                continue;
            }
            let delivery = Delivery::new(self, registration, session, event, payload.clone());
            self.submit(delivery);
        }
    }

    /// Moves the session to `status`, firing `session.status`, and arms the timers the new
    /// status needs (QR rotation). Returns the new generation.
    pub fn set_status(&self, session: &mut Session, status: Status) -> u64 {
        session.status = status;
        session.generation += 1;
        if status == Status::ScanQrCode {
            session.qr_since = Some(Instant::now());
            session.qr_fetched = false;
        } else {
            session.qr_since = None;
        }
        if status == Status::Working {
            session.presence = "online".into();
        } else {
            session.presence = "offline".into();
        }
        self.emit(
            session,
            "session.status",
            json!({"name": session.name, "status": status.as_str()}),
        );
        session.generation
    }

    /// Which QR code of the current run is showing, or `None` once the run is over.
    pub fn qr_index(&self, since: Instant) -> Option<u32> {
        let elapsed = since.elapsed();
        let first = self.options.qr_first_ttl;
        let index = if elapsed < first {
            0
        } else {
            1 + ((elapsed - first).as_millis() / self.options.qr_ttl.as_millis().max(1)) as u32
        };
        (index < self.options.max_qr_codes).then_some(index)
    }

    /// How long the QR code `index` lives.
    pub fn qr_ttl(&self, index: u32) -> Duration {
        if index == 0 {
            self.options.qr_first_ttl
        } else {
            self.options.qr_ttl
        }
    }
}
