//! The answers the endpoints share.

use crate::sim::error::SimResult;
use actix_web::HttpResponse;
use serde::Serialize;
use serde_json::{json, Value};

pub fn ok(value: impl Serialize) -> SimResult {
    Ok(HttpResponse::Ok().json(value))
}

pub fn created(value: impl Serialize) -> SimResult {
    Ok(HttpResponse::Created().json(value))
}

/// The engine's answer for an action that has nothing to show.
pub fn done() -> Value {
    json!({"result": true})
}
