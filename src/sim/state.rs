//! The simulator's memory: sessions with their lifecycle, what each session keeps (groups,
//! channels, presence, webhooks), the request log, faults and the plan counters. All of it is
//! lost on restart, as the upstream's pending retries are.

use super::chat::ChatServer;
use super::delivery::Outbox;
use super::faults::Fault;
use super::log::LogEntry;
use super::options::SimOptions;
use super::registration::Registration;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    pub groups: BTreeMap<String, Group>,
    pub channels: BTreeMap<String, Channel>,
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
            .unwrap_or_else(|| ChatServer::Contact.id(&phone_for(&self.name)))
    }
}

/// A group as the engine answers it (fields in its order).
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub id: String,
    pub subject: String,
    pub description: String,
    pub owner: String,
    /// Unix seconds.
    pub creation: i64,
    pub participants: Vec<Participant>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub id: String,
    pub is_admin: bool,
    pub is_super_admin: bool,
}

/// A channel as the engine answers it (ENGINE.md §6 `Channel`, fields in its order).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    pub id: String,
    pub name: String,
    pub description: String,
    pub invite: String,
    pub role: &'static str,
    pub verified: bool,
    pub subscribers_count: u64,
    pub picture: Option<String>,
    pub preview: Option<String>,
    /// What was sent to it, for the preview; not part of the channel as answered.
    #[serde(skip)]
    pub messages: Vec<Value>,
}

/// A stable phone number per session name, for the account a scan "logs in".
pub fn phone_for(name: &str) -> String {
    format!(
        "7{:010}",
        crc32fast::hash(name.as_bytes()) as u64 % 10_000_000_000
    )
}

/// The calls admitted in one period of a plan limit (a second, a month); a new period starts
/// from none.
#[derive(Debug, Default)]
pub struct PeriodCounter<P> {
    period: P,
    pub used: u64,
}

impl<P: PartialEq> PeriodCounter<P> {
    /// Admits one call of the `limit` for `period`; `false` once they are all spent.
    pub fn spend(&mut self, period: P, limit: u64) -> bool {
        if self.period != period {
            self.period = period;
            self.used = 0;
        }
        let admitted = self.used < limit;
        if admitted {
            self.used += 1;
        }
        admitted
    }
}

/// How many calls `/_sim/log` keeps.
const LOG_CAPACITY: usize = 10_000;

pub struct SimState {
    pub options: SimOptions,
    pub sessions: Mutex<BTreeMap<String, Session>>,
    /// The newest `LOG_CAPACITY` calls (a benchmark must not grow it without bound).
    pub log: Mutex<VecDeque<LogEntry>>,
    pub faults: Mutex<Vec<Fault>>,
    /// By the second (Unix time).
    pub rate: Mutex<PeriodCounter<u64>>,
    /// By the month (`YYYY-MM`, UTC).
    pub monthly: Mutex<PeriodCounter<String>>,
    pub outbox: Arc<Outbox>,
    next_id: AtomicU64,
}

impl SimState {
    pub fn new(options: SimOptions, outbox: Arc<Outbox>) -> Self {
        Self {
            options,
            sessions: Mutex::new(BTreeMap::new()),
            log: Mutex::new(VecDeque::new()),
            faults: Mutex::new(Vec::new()),
            rate: Mutex::default(),
            monthly: Mutex::default(),
            outbox,
            next_id: AtomicU64::new(1),
        }
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Forgets everything: sessions, log, faults, counters, pending retries.
    pub fn reset(&self) {
        self.outbox.forget_pending();
        self.sessions.lock().unwrap().clear();
        self.log.lock().unwrap().clear();
        self.faults.lock().unwrap().clear();
        *self.rate.lock().unwrap() = PeriodCounter::default();
        *self.monthly.lock().unwrap() = PeriodCounter::default();
    }

    /// Logs a call as received, dropping the oldest beyond `LOG_CAPACITY`.
    pub fn log_call(&self, entry: LogEntry) {
        let mut log = self.log.lock().unwrap();
        if log.len() >= LOG_CAPACITY {
            log.pop_front();
        }
        log.push_back(entry);
    }

    /// Notes the status call `seq` was answered with.
    pub fn log_status(&self, seq: u64, status: u16) {
        let mut log = self.log.lock().unwrap();
        if let Some(entry) = log.iter_mut().rev().find(|e| e.seq == seq) {
            entry.status = Some(status);
        }
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
