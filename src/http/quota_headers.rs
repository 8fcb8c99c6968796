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

/// Writes the headers for a standing into `headers`. Numbers go in as header values directly,
/// not through a `String` each: this runs on every answer.
pub fn write(standing: &QuotaStanding, headers: &mut HeaderMap) {
    let name = HeaderName::from_static;
    if let Some(monthly) = standing.monthly {
        headers.insert(name(MONTHLY_LIMIT), HeaderValue::from(monthly.allowance));
        headers.insert(
            name(MONTHLY_REMAINING),
            HeaderValue::from(monthly.remaining),
        );
        headers.insert(
            name(MONTHLY_RESET),
            HeaderValue::from(monthly.reset_seconds),
        );
    }
    if let Some(rate) = standing.rate {
        let limit = rate.per_second;
        let policy = format!("{limit};w=1");
        let state = format!("limit={limit}, remaining={}, reset=1", rate.remaining);
        for (header, value) in [(RATE_POLICY, policy), (RATE, state)] {
            if let Ok(value) = HeaderValue::try_from(value) {
                headers.insert(name(header), value);
            }
        }
    }
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
    let waited = request.extensions().get::<PacingWait>().map(|w| w.0);
    let standing = state.quotas.standing(&caller.tenant, remaining);
    let headers = res.headers_mut();
    write(&standing, headers);
    if let Some(ms) = waited {
        headers.insert(HeaderName::from_static(PACING_WAIT), HeaderValue::from(ms));
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::quota::{MonthlyFigures, RateFigures};

    #[test]
    fn both_limits_give_all_five_headers() {
        let mut headers = HeaderMap::new();
        write(
            &QuotaStanding {
                monthly: Some(MonthlyFigures {
                    allowance: 1000,
                    remaining: 990,
                    reset_seconds: 86_400,
                }),
                rate: Some(RateFigures {
                    per_second: 10,
                    remaining: 7,
                }),
            },
            &mut headers,
        );
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
        let mut headers = HeaderMap::new();
        write(&none, &mut headers);
        assert!(headers.is_empty());
    }
}
