//! Reading a call's JSON body and its fields. Every refusal is a 400 that names the field, by
//! its path from the body (`retries.attempts`).

use crate::sim::error::{SimError, SimResult};
use bytes::Bytes;
use serde_json::{json, Value};

/// The JSON body; an absent body reads as `{}` (the seed's create-session call sends none).
pub fn json_body(body: &Bytes) -> SimResult<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(SimError::bad_request("body must be a JSON object")),
        Err(e) => Err(SimError::bad_request(format!("malformed JSON: {e}"))),
    }
}

pub fn missing(name: &str) -> SimError {
    SimError::bad_request(format!("{name} is required"))
}

fn must_be(name: &str, kind: &str) -> SimError {
    SimError::bad_request(format!("{name} must be {kind}"))
}

/// The field at `path` (names joined by `.`), unless it is absent or `null`.
fn given<'a>(body: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(body, |value, name| value.get(name))
        .filter(|value| !value.is_null())
}

/// A field that may be absent (or `null`) but must be `kind` when given: `read` says whether
/// it is.
pub fn optional_as<'a, T>(
    body: &'a Value,
    path: &str,
    kind: &str,
    read: impl FnOnce(&'a Value) -> Option<T>,
) -> SimResult<Option<T>> {
    given(body, path)
        .map(|value| read(value).ok_or_else(|| must_be(path, kind)))
        .transpose()
}

/// A required non-empty string field: "chatId is required" when absent or blank.
pub fn required(body: &Value, path: &str) -> SimResult<String> {
    optional(body, path)?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| missing(path))
}

pub fn optional(body: &Value, path: &str) -> SimResult<Option<String>> {
    optional_as(body, path, "a string", |v| v.as_str().map(str::to_owned))
}

/// A field of any type that must be given.
pub fn present(body: &Value, path: &str) -> SimResult<Value> {
    given(body, path).cloned().ok_or_else(|| missing(path))
}

pub fn flag(body: &Value, path: &str, default: bool) -> SimResult<bool> {
    Ok(optional_as(body, path, "a boolean", Value::as_bool)?.unwrap_or(default))
}

pub fn object(body: &Value, path: &str) -> SimResult<Option<Value>> {
    optional_as(body, path, "an object", |v| {
        v.is_object().then(|| v.clone())
    })
}

/// A phone number given as text, trimmed and without its `+`; required.
pub fn phone(raw: Option<&str>, name: &str) -> SimResult<String> {
    raw.map(|p| p.trim().trim_start_matches('+').to_owned())
        .filter(|p| !p.is_empty())
        .ok_or_else(|| missing(name))
}
