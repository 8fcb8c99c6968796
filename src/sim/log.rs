//! The log of calls received under `/v1`, exactly as they arrived: what the gateway's
//! forwarding tests assert against.

use base64::Engine;
use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    pub seq: u64,
    pub method: String,
    pub path: String,
    /// The raw query string (without `?`), empty when none.
    pub query: String,
    /// Every header by lowercase name; a repeated header's values joined with ", ".
    pub headers: Map<String, Value>,
    /// The raw body as text (invalid UTF-8 replaced; see `bodyBase64`).
    pub body: String,
    /// The raw body in base64, so binary bodies are recorded exactly.
    pub body_base64: String,
    /// RFC 3339 with milliseconds.
    pub time: String,
    /// The status answered (filled in once known; `null` for a dropped connection).
    pub status: Option<u16>,
}

impl LogEntry {
    pub fn new(
        seq: u64,
        method: &str,
        path: &str,
        query: &str,
        headers: &actix_web::http::header::HeaderMap,
        body: &[u8],
    ) -> Self {
        let mut map = Map::new();
        for name in headers.keys() {
            let values: Vec<String> = headers
                .get_all(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            map.insert(name.as_str().to_owned(), Value::String(values.join(", ")));
        }
        Self {
            seq,
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            headers: map,
            body: String::from_utf8_lossy(body).into_owned(),
            body_base64: base64::engine::general_purpose::STANDARD.encode(body),
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            status: None,
        }
    }
}
