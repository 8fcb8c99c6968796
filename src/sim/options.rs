//! How a simulator is set up: where it listens, the plan it enforces, and the engine timings
//! it imitates (`wa-gateway sim` flags, or `SimOptions { .. }` in tests).

use std::net::SocketAddr;
use std::time::Duration;

/// The hosted API's host, expected in `x-rapidapi-host`.
pub const DEFAULT_HOST: &str = "whatsapp-messaging-bot.p.rapidapi.com";

/// The engine's wait for a session status before it answers 422 (ENGINE.md §1).
pub const ENGINE_STATUS_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Where to listen; port 0 lets the OS choose (`RunningSim::port`).
    pub listen: SocketAddr,
    /// The subscription key expected in `x-rapidapi-key`; `None`: any caller is accepted.
    pub key: Option<String>,
    /// The value expected in `x-rapidapi-host` (checked together with the key).
    pub host: String,
    /// Calls per second before 429; `None`: unlimited.
    pub rps: Option<u32>,
    /// Calls per calendar month (UTC) before 429; `None`: unlimited.
    pub monthly: Option<u64>,
    /// Scan a session by itself this long after its QR or pairing code is first fetched.
    pub auto_scan: Option<Duration>,
    /// How long the first QR code lives, then each later one, and how many there are before
    /// the session goes FAILED (the upstream: 60 s, 20 s, 6).
    pub qr_first_ttl: Duration,
    pub qr_ttl: Duration,
    pub max_qr_codes: u32,
    /// How long a call waits for the session status it needs before its 422. The engine waits
    /// 5 s (`ENGINE_STATUS_WAIT`, ENGINE.md §1); the default is none, so tests that expect a
    /// 422 do not wait for it.
    pub status_wait: Duration,
    /// `false` (`--no-webhooks`): registrations are kept and shown, but no event is sent, so a
    /// forwarding benchmark measures forwarding alone.
    pub send_webhooks: bool,
    pub workers: usize,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            key: None,
            host: DEFAULT_HOST.to_owned(),
            rps: None,
            monthly: None,
            auto_scan: None,
            qr_first_ttl: Duration::from_secs(60),
            qr_ttl: Duration::from_secs(20),
            max_qr_codes: 6,
            status_wait: Duration::ZERO,
            send_webhooks: true,
            workers: 2,
        }
    }
}
