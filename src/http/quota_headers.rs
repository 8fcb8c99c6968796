//! The quota headers on every `/v1` answer once the caller is authenticated, refusals and
//! errors included: the monthly quota as the hosted API's marketplace names it, and the
//! per-second limit as the IETF RateLimit fields, and on a paced send how long it waited
//! (`X-Pacing-Wait-Ms`). Stamped here, in one step around every
//! route, from the `TenantCaller` the extractor left in the request; handlers never stamp.

use crate::http::extract::TenantCaller;
use crate::http::state::AppState;
use crate::services::quota::QuotaStanding;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest};

pub const MONTHLY_LIMIT: &str = "x-ratelimit-requests-limit";
pub const MONTHLY_REMAINING: &str = "x-ratelimit-requests-remaining";
pub const MONTHLY_RESET: &str = "x-ratelimit-requests-reset";
pub const RATE_POLICY: &str = "ratelimit-policy";
pub const RATE: &str = "ratelimit";
/// How long a paced send waited for its turn (only on paced sends' answers).
pub const PACING_WAIT: &str = "x-pacing-wait-ms";

/// Every header a tenant with both limits gets, in the order they are written.
pub const HEADERS: [&str; 5] = [
    MONTHLY_LIMIT,
    MONTHLY_REMAINING,
    MONTHLY_RESET,
    RATE_POLICY,
    RATE,
];

/// The headers for a standing.
pub fn headers_for(standing: &QuotaStanding) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    if let Some(monthly) = standing.monthly {
        put(MONTHLY_LIMIT, monthly.allowance.to_string());
        put(MONTHLY_REMAINING, monthly.remaining.to_string());
        put(MONTHLY_RESET, monthly.reset_seconds.to_string());
    }
    if let Some(rate) = standing.rate {
        let limit = rate.per_second;
        put(RATE_POLICY, format!("{limit};w=1"));
        put(
            RATE,
            format!("limit={limit}, remaining={}, reset=1", rate.remaining),
        );
    }
    headers
}

/// What the tenant's per-second limit had left after this call's admission.
struct RateRemaining(u32);

/// Notes what the call's admission left of the per-second limit, for the `RateLimit` header.
pub fn note_rate_remaining(req: &HttpRequest, remaining: Option<u32>) {
    if let Some(remaining) = remaining {
        req.extensions_mut().insert(RateRemaining(remaining));
    }
}

/// How long this paced send waited for its turn, in milliseconds.
struct PacingWait(u64);

/// Notes the call's pacing wait, for the `X-Pacing-Wait-Ms` header.
pub fn note_pacing_wait(req: &HttpRequest, waited_ms: u64) {
    req.extensions_mut().insert(PacingWait(waited_ms));
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
    let mut headers = headers_for(&state.quotas.standing(&caller.tenant, remaining));
    if let Some(PacingWait(ms)) = request.extensions().get::<PacingWait>() {
        headers.insert(HeaderName::from_static(PACING_WAIT), HeaderValue::from(*ms));
    }
    for (name, value) in headers {
        res.headers_mut().insert(name, value);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::quota::{MonthlyFigures, RateFigures};

    #[test]
    fn both_limits_give_all_five_headers() {
        let headers = headers_for(&QuotaStanding {
            monthly: Some(MonthlyFigures {
                allowance: 1000,
                remaining: 990,
                reset_seconds: 86_400,
            }),
            rate: Some(RateFigures {
                per_second: 10,
                remaining: 7,
            }),
        });
        let get = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
        assert_eq!(get(MONTHLY_LIMIT), "1000");
        assert_eq!(get(MONTHLY_REMAINING), "990");
        assert_eq!(get(MONTHLY_RESET), "86400");
        assert_eq!(get(RATE_POLICY), "10;w=1");
        assert_eq!(get(RATE), "limit=10, remaining=7, reset=1");
        assert_eq!(headers.len(), HEADERS.len());
    }

    #[test]
    fn no_limits_give_no_headers() {
        let none = QuotaStanding {
            monthly: None,
            rate: None,
        };
        assert!(headers_for(&none).is_empty());
    }
}
