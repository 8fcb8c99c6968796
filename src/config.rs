//! Settings from the environment: one typed struct, validated once at start.
//!
//! A bad value stops the start with one line naming the variable, what was wrong and an
//! example of a good value (`main` exits with code 2).

use actix_web::http::header::HeaderValue;
use secrecy::SecretString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;
use url::Url;

pub const DEFAULT_UPSTREAM_URL: &str = "https://whatsapp-messaging-bot.p.rapidapi.com";

/// Why the configuration was refused. Rendered as the single line the operator sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {problem} (example: {var}={example})")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
    pub example: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `None`: start the embedded PostgreSQL in `data_dir`.
    pub database_url: Option<SecretString>,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Where the embedded cluster's server binaries are; `None`: PATH, then
    /// /usr/lib/postgresql/*/bin.
    pub postgres_bin: Option<PathBuf>,
    pub upstream: UpstreamConfig,
    /// How the upstream reaches our webhook ingress; `None` means `http://{listen}`.
    pub public_url: Option<Url>,
    pub log_format: LogFormat,
    /// Largest request body accepted (JSON sends may carry base64 media).
    pub max_body_bytes: usize,
    /// How long in-flight requests may take to finish once shutdown starts.
    pub shutdown_timeout: Duration,
    /// HTTP worker threads; `None`: one per core.
    pub workers: Option<usize>,
    /// Most connections this replica opens to PostgreSQL.
    pub db_max_connections: u32,
    pub admin: AdminConfig,
    pub webhooks: WebhookConfig,
    pub events: EventConfig,
    pub quota: QuotaConfig,
    pub pacing: PacingConfig,
    /// How the listener treats connections and request bodies.
    pub http: HttpConfig,
    /// When set, `/metrics` answers only a caller presenting it as a Bearer token.
    pub metrics_token: Option<SecretString>,
}

/// Connection and body limits of the HTTP listener. The defaults admit at least 5,000
/// concurrent connections per replica (with the process's open-file limit raised to its hard
/// limit at start, see `startup`).
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// How long a request body may take to arrive once its head is read (408 after).
    pub body_timeout: Duration,
    /// Concurrent connections this replica serves, shared out among the workers.
    pub max_connections: usize,
    /// How long an idle keep-alive connection stays open; zero closes after each answer.
    pub keep_alive: Duration,
    /// How long a new connection may take to send its first request head (408 after).
    pub request_head_timeout: Duration,
    /// How long closing a connection may take before it is dropped.
    pub disconnect_timeout: Duration,
    /// Connections the kernel queues before the gateway accepts them.
    pub backlog: u32,
}

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// The hosted API's origin, without `/v1`; `/v1/...` paths are appended unchanged.
    pub url: Url,
    /// The organisation's subscription key, checked to be a header value. `None`: sandbox
    /// mode, the simulator is the upstream.
    pub key: Option<SecretString>,
    /// Sent as `x-rapidapi-host`.
    pub host: String,
    /// `host`, checked to be a header value.
    pub host_header: HeaderValue,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Attempts for idempotent (GET) calls on connect errors, 502, 503 and 429.
    pub get_attempts: u32,
    /// Total time the retries of one GET may take.
    pub get_retry_budget: Duration,
    /// How long a `contacts/check-exists` answer is served from cache.
    pub check_exists_ttl: Duration,
    /// `WAGW_UPSTREAM_MAX_CONNECTIONS`: calls this replica may have in flight to the upstream
    /// at once (each holds a pooled connection; more wait for one).
    pub max_connections: usize,
    /// Its share per worker: every worker has a pool of its own (awc clients cannot cross
    /// threads), so the replica's bound is split among them.
    pub pool_per_worker: usize,
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// The first admin, created at start when absent (never overwritten).
    pub bootstrap_user: Option<String>,
    pub bootstrap_password: Option<SecretString>,
    /// HS256 signing secret; required outside sandbox mode.
    pub jwt_secret: Option<SecretString>,
    pub jwt_ttl: Duration,
    /// `iss` of the admin tokens this deployment issues and accepts (`WAGW_JWT_ISSUER`).
    pub jwt_issuer: String,
    /// Proxies whose `X-Forwarded-For` names the client (`WAGW_TRUSTED_PROXIES`, CIDRs).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Credential checks (argon2id) that may wait for a core before new ones answer 503.
    pub auth_queue: usize,
    /// Per-key request limit: at least this many per second (`WAGW_KEY_RPS_MIN`).
    pub key_rps_min: u32,
    /// Per-key request limit of keys whose tenant has no rate limit (`WAGW_KEY_RPS_DEFAULT`).
    pub key_rps_default: u32,
}

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Allow deliveries to loopback and private addresses (tests, trusted networks).
    pub allow_private: bool,
    pub delivered_retention: Duration,
    pub failed_retention: Duration,
    /// An endpoint failing without a success for this long is disabled.
    pub disable_after: Duration,
    /// Deliveries one tenant may have pending; past it the oldest end failed.
    pub max_pending_per_tenant: i64,
    /// `WAGW_INGRESS_BATCH`: the most events the ingress commits in one transaction.
    pub ingress_batch: usize,
}

/// The event log and its streams (`GET /v1/events`, SSE, WebSocket).
#[derive(Debug, Clone)]
pub struct EventConfig {
    /// How long an event stays in the log (one with deliveries still kept stays longer).
    pub retention: Duration,
    /// How often an idle stream says it is alive (an SSE comment, a WebSocket ping).
    pub keepalive: Duration,
}

#[derive(Debug, Clone)]
pub struct QuotaConfig {
    /// The organisation's plan: calls per second, per month, and sessions. `None`: unlimited.
    pub upstream_rps: Option<u32>,
    pub upstream_monthly: Option<u64>,
    pub upstream_max_sessions: Option<u32>,
    /// How long a call may wait in the fair queue for upstream budget before a 429.
    pub upstream_queue_wait: Duration,
}

/// Send pacing (per-session policies live in the database).
#[derive(Debug, Clone)]
pub struct PacingConfig {
    /// The longest a paced send waits for its turn; one that would wait longer is refused
    /// with 429 at once.
    pub max_wait: Duration,
}

/// The most `WAGW_PACING_MAX_WAIT_MS` may be: a client holds its request open that long.
const MAX_PACING_WAIT_MS: u64 = 600_000;

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests can pass a map instead of the environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let workers = workers(&env)?;
        let upstream = upstream_config(&env, worker_count(workers))?;
        let public_url = env
            .optional::<Url>("WAGW_PUBLIC_URL", "https://gateway.example.com")?
            .map(|u| check_origin("WAGW_PUBLIC_URL", u))
            .transpose()?;
        let database_url = database_url(&env)?;
        let log_format = log_format(&env)?;
        let admin = admin_config(&env, upstream.key.is_some())?;
        Ok(Self {
            database_url,
            listen: env.parse_or(
                "WAGW_LISTEN",
                "127.0.0.1:8080".parse().unwrap(),
                "0.0.0.0:8080",
            )?,
            data_dir: env
                .string("WAGW_DATA_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("./.wa-gateway")),
            postgres_bin: env.string("WAGW_POSTGRES_BIN").map(PathBuf::from),
            upstream,
            public_url,
            log_format,
            max_body_bytes: env.parse_or("WAGW_MAX_BODY_BYTES", 16 * 1024 * 1024, "16777216")?,
            shutdown_timeout: env.seconds("WAGW_SHUTDOWN_TIMEOUT_SECS", 30)?,
            workers,
            db_max_connections: env.parse_or("WAGW_DB_MAX_CONNECTIONS", 20, "20")?,
            admin,
            webhooks: webhook_config(&env)?,
            events: event_config(&env)?,
            quota: quota_config(&env)?,
            pacing: pacing_config(&env)?,
            http: http_config(&env)?,
            metrics_token: metrics_token(&env)?,
        })
    }

    /// Sandbox mode: no upstream key, the in-process simulator is the upstream.
    pub fn sandbox(&self) -> bool {
        self.upstream.key.is_none()
    }

    /// Settings that are allowed but unsafe, one sentence each, for the start-up log: a
    /// cleartext origin to a host other than loopback carries the organisation's key
    /// (`WAGW_UPSTREAM_URL`) or the ingress token and message content (`WAGW_PUBLIC_URL`) in
    /// clear. Warned, not refused: an engine or a proxy on a private network is legitimate.
    pub fn warnings(&self) -> Vec<String> {
        if self.sandbox() {
            return Vec::new();
        }
        let cleartext = [
            (
                "WAGW_UPSTREAM_URL",
                Some(&self.upstream.url),
                "the upstream key",
            ),
            (
                "WAGW_PUBLIC_URL",
                self.public_url.as_ref(),
                "the ingress token and every event",
            ),
        ];
        cleartext
            .into_iter()
            .filter_map(|(var, url, what)| {
                let url = url.filter(|u| u.scheme() == "http" && !is_loopback(u))?;
                Some(format!(
                    "{var} is http:// to {}: {what} travel in clear; use https:// unless the \
                     network between is private",
                    url.host_str().unwrap_or_default()
                ))
            })
            .collect()
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A value sent as an HTTP header must be one: a newline or another control character would
/// otherwise fail every worker at start. The value is never echoed (it may be a secret).
fn header_value(
    var: &'static str,
    value: &str,
    example: &'static str,
) -> Result<HeaderValue, ConfigError> {
    match HeaderValue::from_str(value) {
        Ok(header) => Ok(header),
        Err(_) => Err(ConfigError {
            var,
            problem: "holds a character an HTTP header cannot carry (a newline or another \
                      control character?)"
                .into(),
            example,
        }),
    }
}

/// The hosted API: where it is, how we present ourselves to it, and how patient we are.
/// The key and the host are sent as headers, so they are checked as header values here.
fn upstream_config(env: &Env, workers: usize) -> Result<UpstreamConfig, ConfigError> {
    let url: Url = env.parse_or(
        "WAGW_UPSTREAM_URL",
        DEFAULT_UPSTREAM_URL.parse().expect("default upstream URL"),
        "https://whatsapp-messaging-bot.p.rapidapi.com",
    )?;
    let url = check_origin("WAGW_UPSTREAM_URL", url)?;
    let default_host = url.host_str().unwrap_or_default().to_owned();
    let host = env.string("WAGW_UPSTREAM_HOST").unwrap_or(default_host);
    let host_header = header_value("WAGW_UPSTREAM_HOST", &host, "api.example.com")?;
    // Not trimmed: a key pasted with a newline is refused, never silently altered.
    let key = env.string("WAGW_UPSTREAM_KEY");
    if let Some(key) = &key {
        header_value(
            "WAGW_UPSTREAM_KEY",
            key,
            "the key exactly as the provider shows it",
        )?;
    }
    let max_connections = positive(
        env.parse_or("WAGW_UPSTREAM_MAX_CONNECTIONS", 2048, "2048")?,
        "WAGW_UPSTREAM_MAX_CONNECTIONS",
    )? as usize;
    Ok(UpstreamConfig {
        url,
        key: key.map(SecretString::from),
        host,
        host_header,
        connect_timeout: env.seconds("WAGW_UPSTREAM_CONNECT_TIMEOUT_SECS", 30)?,
        request_timeout: env.seconds("WAGW_UPSTREAM_TIMEOUT_SECS", 30)?,
        get_attempts: env.parse_or("WAGW_UPSTREAM_GET_ATTEMPTS", 3, "3")?,
        get_retry_budget: env.seconds("WAGW_UPSTREAM_GET_RETRY_SECS", 5)?,
        check_exists_ttl: env.seconds("WAGW_CHECK_EXISTS_TTL_SECS", 24 * 3600)?,
        max_connections,
        pool_per_worker: max_connections.div_ceil(workers),
    })
}

fn database_url(env: &Env) -> Result<Option<SecretString>, ConfigError> {
    let database_url = env.string("DATABASE_URL");
    if let Some(url) = &database_url {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ConfigError {
                var: "DATABASE_URL",
                problem: "must be a postgres:// or postgresql:// URL".into(),
                example: "postgres://wagw:secret@localhost:5432/wagw",
            });
        }
    }
    Ok(database_url.map(SecretString::from))
}

fn log_format(env: &Env) -> Result<LogFormat, ConfigError> {
    match env.string("WAGW_LOG_FORMAT").as_deref() {
        None | Some("pretty") => Ok(LogFormat::Pretty),
        Some("json") => Ok(LogFormat::Json),
        Some(other) => Err(ConfigError {
            var: "WAGW_LOG_FORMAT",
            problem: format!("`{other}` is not one of pretty, json"),
            example: "json",
        }),
    }
}

/// `WAGW_WORKERS`, else one per core (as actix would choose).
pub fn worker_count(workers: Option<usize>) -> usize {
    workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    })
}

fn workers(env: &Env) -> Result<Option<usize>, ConfigError> {
    let workers = env.optional::<usize>("WAGW_WORKERS", "4")?;
    if workers == Some(0) {
        return Err(ConfigError {
            var: "WAGW_WORKERS",
            problem: "must be at least 1".into(),
            example: "4",
        });
    }
    Ok(workers)
}

/// The admin API: the first admin, token signing, and how credentials are checked. A
/// deployment with a real upstream (`with_upstream_key`) must sign with its own secret.
fn admin_config(env: &Env, with_upstream_key: bool) -> Result<AdminConfig, ConfigError> {
    let (bootstrap_user, bootstrap_password) = bootstrap_admin(env)?;
    let jwt_secret = env.string("WAGW_JWT_SECRET");
    if jwt_secret.as_ref().is_some_and(|secret| secret.len() < 32) {
        return Err(ConfigError {
            var: "WAGW_JWT_SECRET",
            problem: "must be at least 32 bytes".into(),
            example: "$(openssl rand -hex 32)",
        });
    }
    if with_upstream_key && jwt_secret.is_none() {
        return Err(ConfigError {
            var: "WAGW_JWT_SECRET",
            problem: "is required outside sandbox mode (WAGW_UPSTREAM_KEY is set)".into(),
            example: "$(openssl rand -hex 32)",
        });
    }
    Ok(AdminConfig {
        bootstrap_user,
        bootstrap_password,
        jwt_secret: jwt_secret.map(SecretString::from),
        jwt_ttl: env.seconds("WAGW_JWT_TTL_SECS", 3600)?,
        jwt_issuer: env
            .string("WAGW_JWT_ISSUER")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|| "wa-gateway".to_owned()),
        trusted_proxies: trusted_proxies(env.string("WAGW_TRUSTED_PROXIES"))?,
        auth_queue: env.parse_or("WAGW_AUTH_QUEUE", 64, "64")?,
        key_rps_min: positive(
            env.parse_or("WAGW_KEY_RPS_MIN", 50, "50")?,
            "WAGW_KEY_RPS_MIN",
        )?,
        key_rps_default: positive(
            env.parse_or("WAGW_KEY_RPS_DEFAULT", 1000, "1000")?,
            "WAGW_KEY_RPS_DEFAULT",
        )?,
    })
}

/// `WAGW_ADMIN_USER` and `WAGW_ADMIN_PASSWORD`, both or neither.
fn bootstrap_admin(env: &Env) -> Result<(Option<String>, Option<SecretString>), ConfigError> {
    let admin_user = env.string("WAGW_ADMIN_USER");
    let admin_password = env.string("WAGW_ADMIN_PASSWORD");
    if admin_user.is_some() != admin_password.is_some() {
        let (var, example) = if admin_user.is_some() {
            ("WAGW_ADMIN_PASSWORD", "a-long-passphrase")
        } else {
            ("WAGW_ADMIN_USER", "admin")
        };
        return Err(ConfigError {
            var,
            problem: "WAGW_ADMIN_USER and WAGW_ADMIN_PASSWORD must be set together".into(),
            example,
        });
    }
    if admin_password
        .as_ref()
        .is_some_and(|pw| pw.chars().count() < 12)
    {
        return Err(ConfigError {
            var: "WAGW_ADMIN_PASSWORD",
            problem: "must be at least 12 characters".into(),
            example: "correct-horse-battery-staple",
        });
    }
    Ok((admin_user, admin_password.map(SecretString::from)))
}

fn webhook_config(env: &Env) -> Result<WebhookConfig, ConfigError> {
    Ok(WebhookConfig {
        allow_private: env.parse_or("WAGW_WEBHOOK_ALLOW_PRIVATE", false, "true")?,
        delivered_retention: env.seconds("WAGW_WEBHOOK_DELIVERED_RETENTION_SECS", 7 * 86400)?,
        failed_retention: env.seconds("WAGW_WEBHOOK_FAILED_RETENTION_SECS", 30 * 86400)?,
        disable_after: env.seconds("WAGW_WEBHOOK_DISABLE_AFTER_SECS", 5 * 86400)?,
        max_pending_per_tenant: max_pending(env)?,
        ingress_batch: positive(
            env.parse_or("WAGW_INGRESS_BATCH", 256, "256")?,
            "WAGW_INGRESS_BATCH",
        )? as usize,
    })
}

fn event_config(env: &Env) -> Result<EventConfig, ConfigError> {
    let keepalive = env.seconds("WAGW_EVENT_KEEPALIVE_SECS", 15)?;
    if !(1..=3600).contains(&keepalive.as_secs()) {
        return Err(ConfigError {
            var: "WAGW_EVENT_KEEPALIVE_SECS",
            problem: "must be between 1 and 3600 seconds".into(),
            example: "15",
        });
    }
    Ok(EventConfig {
        retention: env.seconds("WAGW_EVENT_RETENTION_SECS", 7 * 86400)?,
        keepalive,
    })
}

fn max_pending(env: &Env) -> Result<i64, ConfigError> {
    const VAR: &str = "WAGW_WEBHOOK_MAX_PENDING_PER_TENANT";
    match env.parse_or(VAR, 10_000i64, "10000")? {
        n if n >= 1 => Ok(n),
        _ => Err(ConfigError {
            var: VAR,
            problem: "must be at least 1".into(),
            example: "10000",
        }),
    }
}

fn quota_config(env: &Env) -> Result<QuotaConfig, ConfigError> {
    Ok(QuotaConfig {
        upstream_rps: env.optional("WAGW_UPSTREAM_RPS", "10")?,
        upstream_monthly: env.optional("WAGW_UPSTREAM_MONTHLY", "50000")?,
        upstream_max_sessions: env.optional("WAGW_UPSTREAM_MAX_SESSIONS", "10")?,
        upstream_queue_wait: Duration::from_millis(env.parse_or(
            "WAGW_UPSTREAM_QUEUE_WAIT_MS",
            2000,
            "2000",
        )?),
    })
}

fn pacing_config(env: &Env) -> Result<PacingConfig, ConfigError> {
    let max_wait = env.parse_or("WAGW_PACING_MAX_WAIT_MS", 30_000u64, "30000")?;
    if max_wait > MAX_PACING_WAIT_MS {
        return Err(ConfigError {
            var: "WAGW_PACING_MAX_WAIT_MS",
            problem: format!("must be at most {MAX_PACING_WAIT_MS} (ten minutes)"),
            example: "30000",
        });
    }
    Ok(PacingConfig {
        max_wait: Duration::from_millis(max_wait),
    })
}

fn http_config(env: &Env) -> Result<HttpConfig, ConfigError> {
    let at_least_one = |var: &'static str, value: u64, example: &'static str| {
        if value == 0 {
            Err(ConfigError {
                var,
                problem: "must be at least 1".into(),
                example,
            })
        } else {
            Ok(value)
        }
    };
    let seconds = |var: &'static str, default: u64| -> Result<Duration, ConfigError> {
        let value = env.parse_or(var, default, "10")?;
        Ok(Duration::from_secs(at_least_one(var, value, "10")?))
    };
    let max_connections = env.parse_or("WAGW_MAX_CONNECTIONS", 20_000u64, "20000")?;
    let backlog = env.parse_or("WAGW_LISTEN_BACKLOG", 2048u32, "2048")?;
    Ok(HttpConfig {
        body_timeout: seconds("WAGW_BODY_TIMEOUT_SECS", 10)?,
        max_connections: at_least_one("WAGW_MAX_CONNECTIONS", max_connections, "20000")? as usize,
        keep_alive: env.seconds("WAGW_KEEP_ALIVE_SECS", 75)?,
        request_head_timeout: seconds("WAGW_REQUEST_HEAD_TIMEOUT_SECS", 5)?,
        disconnect_timeout: seconds("WAGW_DISCONNECT_TIMEOUT_SECS", 1)?,
        backlog: at_least_one("WAGW_LISTEN_BACKLOG", backlog.into(), "2048")? as u32,
    })
}

/// `WAGW_METRICS_TOKEN`: printable, without spaces, and long enough not to be guessed.
fn metrics_token(env: &Env) -> Result<Option<SecretString>, ConfigError> {
    let Some(token) = env.string("WAGW_METRICS_TOKEN") else {
        return Ok(None);
    };
    if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError {
            var: "WAGW_METRICS_TOKEN",
            problem: "must be at least 16 printable characters without spaces".into(),
            example: "$(openssl rand -hex 32)",
        });
    }
    Ok(Some(SecretString::from(token)))
}

/// Comma-separated CIDRs (a bare address is its own /32 or /128).
fn trusted_proxies(raw: Option<String>) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| ConfigError {
                    var: "WAGW_TRUSTED_PROXIES",
                    problem: format!("`{s}` is not a CIDR or an IP address"),
                    example: "10.0.0.0/8,192.168.1.10",
                })
        })
        .collect()
}

fn positive(value: u32, var: &'static str) -> Result<u32, ConfigError> {
    if value == 0 {
        return Err(ConfigError {
            var,
            problem: "must be at least 1".into(),
            example: "50",
        });
    }
    Ok(value)
}

/// An origin-style URL: http(s), no query or fragment; a trailing `/` is dropped.
fn check_origin(var: &'static str, url: Url) -> Result<Url, ConfigError> {
    let bad = |problem: &str| ConfigError {
        var,
        problem: problem.to_owned(),
        example: "https://whatsapp-messaging-bot.p.rapidapi.com",
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must be an http:// or https:// URL"));
    }
    if url.host_str().is_none() {
        return Err(bad("must name a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not carry a query or fragment"));
    }
    Ok(url)
}

struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    /// A set, non-empty value.
    fn string(&self, var: &str) -> Option<String> {
        (self.0)(var).filter(|v| !v.trim().is_empty())
    }

    fn optional<T: FromStr>(
        &self,
        var: &'static str,
        example: &'static str,
    ) -> Result<Option<T>, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        self.string(var)
            .map(|raw| {
                raw.trim().parse::<T>().map_err(|e| ConfigError {
                    var,
                    problem: format!("`{raw}` is not valid: {e}"),
                    example,
                })
            })
            .transpose()
    }

    fn parse_or<T: FromStr>(
        &self,
        var: &'static str,
        default: T,
        example: &'static str,
    ) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        Ok(self.optional(var, example)?.unwrap_or(default))
    }

    fn seconds(&self, var: &'static str, default: u64) -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs(self.parse_or(var, default, "30")?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_give_a_sandbox_on_loopback() {
        let c = config(&[]).unwrap();
        assert!(c.sandbox());
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.upstream.host, "whatsapp-messaging-bot.p.rapidapi.com");
        assert_eq!(c.upstream.request_timeout, Duration::from_secs(30));
        assert_eq!(c.max_body_bytes, 16 * 1024 * 1024);
        assert_eq!(c.pacing.max_wait, Duration::from_secs(30));
    }

    #[test]
    fn the_pacing_wait_is_bounded() {
        let c = config(&[("WAGW_PACING_MAX_WAIT_MS", "0")]).unwrap();
        assert_eq!(c.pacing.max_wait, Duration::ZERO);
        for bad in ["-1", "600001", "soon"] {
            let err = config(&[("WAGW_PACING_MAX_WAIT_MS", bad)]).unwrap_err();
            assert_eq!(err.var, "WAGW_PACING_MAX_WAIT_MS", "{bad}");
        }
    }

    #[test]
    fn the_upstream_pool_bound_is_shared_among_the_workers() {
        let c = config(&[
            ("WAGW_WORKERS", "3"),
            ("WAGW_UPSTREAM_MAX_CONNECTIONS", "100"),
        ])
        .unwrap();
        assert_eq!(
            (c.upstream.max_connections, c.upstream.pool_per_worker),
            (100, 34)
        );
        let c = config(&[("WAGW_WORKERS", "2")]).unwrap();
        assert_eq!(
            c.upstream.pool_per_worker, 1024,
            "the default admits 2,048 calls in flight"
        );
        for bad in ["0", "-1", "many"] {
            let err = config(&[("WAGW_UPSTREAM_MAX_CONNECTIONS", bad)]).unwrap_err();
            assert_eq!(err.var, "WAGW_UPSTREAM_MAX_CONNECTIONS", "{bad}");
        }
    }

    #[test]
    fn upstream_host_defaults_to_the_url_host() {
        let c = config(&[("WAGW_UPSTREAM_URL", "http://127.0.0.1:9999")]).unwrap();
        assert_eq!(c.upstream.host, "127.0.0.1");
    }

    #[test]
    fn a_bad_value_names_the_variable_and_an_example() {
        let err = config(&[("WAGW_LISTEN", "nope")]).unwrap_err();
        assert_eq!(err.var, "WAGW_LISTEN");
        let line = err.to_string();
        assert!(
            line.starts_with("WAGW_LISTEN: `nope` is not valid"),
            "{line}"
        );
        assert!(line.contains("example: WAGW_LISTEN=0.0.0.0:8080"), "{line}");
    }

    #[test]
    fn refuses_non_http_upstream_and_bad_log_format() {
        assert_eq!(
            config(&[("WAGW_UPSTREAM_URL", "ftp://x")]).unwrap_err().var,
            "WAGW_UPSTREAM_URL"
        );
        assert_eq!(
            config(&[("WAGW_LOG_FORMAT", "xml")]).unwrap_err().var,
            "WAGW_LOG_FORMAT"
        );
        assert_eq!(
            config(&[("DATABASE_URL", "mysql://x")]).unwrap_err().var,
            "DATABASE_URL"
        );
    }

    #[test]
    fn a_real_upstream_key_requires_a_jwt_secret() {
        let err = config(&[("WAGW_UPSTREAM_KEY", "k")]).unwrap_err();
        assert_eq!(err.var, "WAGW_JWT_SECRET");
        let ok = config(&[
            ("WAGW_UPSTREAM_KEY", "k"),
            ("WAGW_JWT_SECRET", &"s".repeat(32)),
        ])
        .unwrap();
        assert!(!ok.sandbox());
    }

    #[test]
    fn trusted_proxies_are_cidrs_or_addresses() {
        assert!(config(&[]).unwrap().admin.trusted_proxies.is_empty());
        let c = config(&[("WAGW_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.10,::1")]).unwrap();
        let nets: Vec<String> = c
            .admin
            .trusted_proxies
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(nets, ["10.0.0.0/8", "192.168.1.10/32", "::1/128"]);
        let err = config(&[("WAGW_TRUSTED_PROXIES", "10.0.0.0/8,nope")]).unwrap_err();
        assert_eq!(err.var, "WAGW_TRUSTED_PROXIES");
        assert_eq!(
            config(&[("WAGW_KEY_RPS_MIN", "0")]).unwrap_err().var,
            "WAGW_KEY_RPS_MIN"
        );
    }

    #[test]
    fn admin_bootstrap_needs_both_halves_and_a_real_password() {
        assert_eq!(
            config(&[("WAGW_ADMIN_USER", "root")]).unwrap_err().var,
            "WAGW_ADMIN_PASSWORD"
        );
        assert_eq!(
            config(&[
                ("WAGW_ADMIN_USER", "root"),
                ("WAGW_ADMIN_PASSWORD", "short")
            ])
            .unwrap_err()
            .var,
            "WAGW_ADMIN_PASSWORD"
        );
    }

    #[test]
    fn a_header_value_with_a_newline_is_refused_without_echoing_it() {
        let secret = "org-key-abc";
        let err = config(&[
            ("WAGW_UPSTREAM_KEY", &format!("{secret}\n")),
            ("WAGW_JWT_SECRET", &"s".repeat(32)),
        ])
        .unwrap_err();
        assert_eq!(err.var, "WAGW_UPSTREAM_KEY");
        assert!(!err.to_string().contains(secret), "{err}");
        let err = config(&[("WAGW_UPSTREAM_HOST", "a\r\nb: c")]).unwrap_err();
        assert_eq!(err.var, "WAGW_UPSTREAM_HOST");
    }

    #[test]
    fn http_limits_have_defaults_and_refuse_zero() {
        let c = config(&[]).unwrap();
        assert_eq!(c.http.body_timeout, Duration::from_secs(10));
        assert!(c.http.max_connections >= 5000);
        assert_eq!(c.http.keep_alive, Duration::from_secs(75));
        assert_eq!(c.http.request_head_timeout, Duration::from_secs(5));
        for var in [
            "WAGW_BODY_TIMEOUT_SECS",
            "WAGW_MAX_CONNECTIONS",
            "WAGW_REQUEST_HEAD_TIMEOUT_SECS",
            "WAGW_LISTEN_BACKLOG",
        ] {
            assert_eq!(config(&[(var, "0")]).unwrap_err().var, var);
        }
        assert_eq!(
            config(&[("WAGW_KEEP_ALIVE_SECS", "0")])
                .unwrap()
                .http
                .keep_alive,
            Duration::ZERO
        );
    }

    #[test]
    fn the_metrics_token_must_be_long_and_printable() {
        assert_eq!(
            config(&[("WAGW_METRICS_TOKEN", "short")]).unwrap_err().var,
            "WAGW_METRICS_TOKEN"
        );
        assert_eq!(
            config(&[("WAGW_METRICS_TOKEN", "with a space in it, long enough")])
                .unwrap_err()
                .var,
            "WAGW_METRICS_TOKEN"
        );
        assert!(config(&[("WAGW_METRICS_TOKEN", &"t".repeat(32))])
            .unwrap()
            .metrics_token
            .is_some());
    }

    #[test]
    fn cleartext_origins_beyond_loopback_are_warned_outside_the_sandbox() {
        let real = [
            ("WAGW_UPSTREAM_KEY", "k"),
            ("WAGW_JWT_SECRET", "ssssssssssssssssssssssssssssssss"),
        ];
        let with = |extra: &[(&str, &str)]| {
            let mut vars = real.to_vec();
            vars.extend_from_slice(extra);
            config(&vars).unwrap().warnings()
        };
        assert!(with(&[]).is_empty(), "https by default");
        assert!(with(&[("WAGW_UPSTREAM_URL", "http://127.0.0.1:9100")]).is_empty());
        let warned = with(&[
            ("WAGW_UPSTREAM_URL", "http://api.example.com"),
            ("WAGW_PUBLIC_URL", "http://gw.example.com"),
        ]);
        assert_eq!(warned.len(), 2, "{warned:?}");
        assert!(warned[0].starts_with("WAGW_UPSTREAM_URL"), "{warned:?}");
        let sandbox = config(&[("WAGW_PUBLIC_URL", "http://gw.example.com")]).unwrap();
        assert!(sandbox.warnings().is_empty());
    }
}
