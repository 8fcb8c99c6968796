//! Faults injected per path through `/_sim/faults`: an error status (429 with `Retry-After`
//! included), a delay, a dropped connection; for a number of calls or until cleared.

use super::body::{optional, optional_as};
use super::error::{SimError, SimResult};
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    pub id: u64,
    /// Exact request path, or a prefix ending in `*`.
    pub path: String,
    /// Only calls with this method; `None`: any.
    pub method: Option<String>,
    /// Answer with this status in the error shape instead of serving the call.
    pub status: Option<u16>,
    pub message: Option<String>,
    /// Seconds for `Retry-After` (429 gets 1 when not given).
    pub retry_after: Option<u64>,
    /// Wait this long first (then the status, the drop, or the normal answer).
    pub delay_ms: Option<u64>,
    /// Close the connection without answering.
    pub drop: bool,
    /// Calls left to affect; `None`: until cleared.
    pub remaining: Option<u32>,
    /// With `status`: answer this JSON body verbatim instead of the error shape (the engine's
    /// object errors, e.g. 422 `{error, session, status, expected}`).
    pub body: Option<Value>,
    /// Serve the call, then answer malformed JSON in place of its body (an answer that breaks
    /// after the upstream acted on the call).
    pub garble: bool,
}

/// What a matching fault does to one call.
#[derive(Debug, Clone)]
pub struct Effect {
    pub delay: Option<Duration>,
    pub drop: bool,
    pub error: Option<(u16, String, Option<u64>)>,
    pub body: Option<Value>,
    pub garble: bool,
}

impl Fault {
    pub fn parse(id: u64, body: &Value) -> SimResult<Self> {
        let path = body
            .get("path")
            .and_then(Value::as_str)
            .filter(|p| p.starts_with('/'))
            .ok_or_else(|| SimError::bad_request("path is required (e.g. \"/v1/sendText\")"))?
            .to_owned();
        let method = optional(body, "method")?.map(|m| m.to_ascii_uppercase());
        let status = optional_as(body, "status", "400 to 599", |v| {
            v.as_u64().filter(|s| (400..=599).contains(s))
        })?;
        let number = |name: &str| optional_as(body, name, "a whole number", Value::as_u64);
        // Anything but `true` leaves these off.
        let switch = |name: &str| body.get(name).and_then(Value::as_bool).unwrap_or(false);
        let (drop, delay_ms, garble) = (switch("drop"), number("delayMs")?, switch("garble"));
        if status.is_none() && !drop && delay_ms.is_none() && !garble {
            return Err(SimError::bad_request(
                "a fault needs at least one of status, delayMs, drop, garble",
            ));
        }
        let remaining = number("count")?.map(|c| c.min(u32::MAX as u64) as u32);
        if remaining == Some(0) {
            return Err(SimError::bad_request("count must be at least 1"));
        }
        Ok(Self {
            id,
            path,
            method,
            status: status.map(|s| s as u16),
            message: body
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned),
            retry_after: number("retryAfter")?,
            delay_ms,
            drop,
            remaining,
            body: body.get("body").cloned().filter(|b| !b.is_null()),
            garble,
        })
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        let path_ok = match self.path.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => path == self.path,
        };
        path_ok && self.method.as_deref().is_none_or(|m| m == method)
    }

    fn effect(&self) -> Effect {
        Effect {
            delay: self.delay_ms.map(Duration::from_millis),
            drop: self.drop,
            body: self.body.clone(),
            garble: self.garble,
            error: self.status.map(|s| {
                let retry_after = self.retry_after.or((s == 429).then_some(1));
                let message = self.message.clone().unwrap_or_else(|| {
                    if s == 429 {
                        "Too many requests".to_owned()
                    } else {
                        format!("injected fault: {s}")
                    }
                });
                (s, message, retry_after.map(|r| r.max(1)))
            }),
        }
    }
}

/// Takes the first fault matching the call, spending one of its counted uses.
pub fn take(faults: &mut Vec<Fault>, method: &str, path: &str) -> Option<Effect> {
    let index = faults.iter().position(|f| f.matches(method, path))?;
    let effect = faults[index].effect();
    if let Some(left) = faults[index].remaining.as_mut() {
        *left -= 1;
        if *left == 0 {
            faults.remove(index);
        }
    }
    Some(effect)
}
