//! The quota headers on every `/v1` answer once the caller is authenticated, refusals and
//! errors included: stamped here, in one step around every route, from the `TenantCaller`
//! the extractor left in the request. Handlers never stamp.

use crate::http::state::AppState;
use crate::services::auth::TenantCaller;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest};

/// What the tenant's per-second limit had left after this call's admission.
struct RateRemaining(u32);

/// Notes what the call's admission left of the per-second limit, for the `RateLimit` header.
pub fn note_rate_remaining(req: &HttpRequest, remaining: Option<u32>) {
    if let Some(remaining) = remaining {
        req.extensions_mut().insert(RateRemaining(remaining));
    }
}

pub async fn stamp(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let request = res.request();
    let Some(caller) = request.extensions().get::<TenantCaller>().cloned() else {
        return Ok(res);
    };
    let Some(state) = request.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(res);
    };
    let remaining = request.extensions().get::<RateRemaining>().map(|r| r.0);
    let headers = state.quotas.headers(&caller.tenant, remaining);
    for (name, value) in headers {
        res.headers_mut().insert(name, value);
    }
    Ok(res)
}
