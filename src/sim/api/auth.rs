//! `/v1/{session}/auth/...`: the QR code and the pairing code a phone logs in with.

use super::access::{await_session_in, await_status, status_mismatch, with_session_in};
use super::reply::{created, ok};
use crate::sim::body::{json_body, optional, phone};
use crate::sim::chat::is_phone_number;
use crate::sim::error::{SimError, SimResult};
use crate::sim::lifecycle;
use crate::sim::qr;
use crate::sim::state::{SimState, Status};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use bytes::Bytes;
use rand::Rng;
use serde_json::{json, Value};
use std::collections::HashMap;

type Sim = web::Data<SimState>;

pub async fn qr_code(
    state: Sim,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> SimResult {
    // Any value but `raw` gives the image, the seed's `binary` included (ENGINE.md §2 row 7).
    let format = query.get("format").map(String::as_str).unwrap_or("image");
    let value = await_session_in(&state, &path, Status::ScanQrCode, |s| {
        let Some(index) = s.qr_since.and_then(|since| state.qr_index(since)) else {
            // The run of codes is over: the session failed, and the 422 says so.
            lifecycle::set_status(&state, s, Status::Failed);
            return Err(status_mismatch(s, Status::ScanQrCode));
        };
        lifecycle::code_fetched(&state, s);
        Ok(qr::raw_value(&s.name, s.generation, index))
    })
    .await?;
    if format == "raw" {
        return ok(json!({"value": value}));
    }
    let png = qr::png(&value).map_err(SimError::internal)?;
    let wants_json = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        // Exactly `application/json` (ENGINE.md §2 row 7, BufferResponseInterceptor): axios'
        // `application/json, text/plain, */*` gets the PNG.
        .is_some_and(|a| a.trim() == "application/json");
    if wants_json {
        let data = base64::engine::general_purpose::STANDARD.encode(&png);
        return ok(json!({"mimetype": "image/png", "data": data}));
    }
    Ok(HttpResponse::Ok().content_type("image/png").body(png))
}

/// The seed's `GET /auth/pairing-code?phoneNumber=`.
pub async fn pairing_code(
    state: Sim,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> SimResult {
    await_status(&state, &path, Status::ScanQrCode).await;
    ok(pair(
        &state,
        &path,
        query.get("phoneNumber").map(String::as_str),
    )?)
}

/// The engine's own `POST /auth/request-code {phoneNumber, method?}` (ENGINE.md §2 row 8):
/// 201 `{code}`.
pub async fn request_code(state: Sim, path: web::Path<String>, body: Bytes) -> SimResult {
    let body = json_body(&body)?;
    let phone = optional(&body, "phoneNumber")?;
    await_status(&state, &path, Status::ScanQrCode).await;
    created(pair(&state, &path, phone.as_deref())?)
}

/// A pairing code `ABCD-ABCD` for the phone; the scan then logs in that phone.
fn pair(state: &Sim, session: &str, phone_number: Option<&str>) -> SimResult<Value> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTVWXYZ0123456789";
    let phone = phone(phone_number, "phoneNumber")?;
    if !is_phone_number(&phone) {
        return Err(SimError::bad_request(
            "phoneNumber must be digits with the country code",
        ));
    }
    with_session_in(state, session, Status::ScanQrCode, |s| {
        s.pairing_phone = Some(phone);
        lifecycle::code_fetched(state, s);
        let mut rng = rand::thread_rng();
        let mut code: String = (0..8)
            .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
            .collect();
        code.insert(4, '-');
        Ok(json!({"code": code}))
    })
}
