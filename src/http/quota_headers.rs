//! The quota headers every `/v1` answer carries: the monthly quota as the hosted API's
//! marketplace names it, and the per-second limit as the IETF RateLimit fields.

use crate::services::auth::Tenant;
use crate::services::quota::{QuotaStanding, Quotas};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::HttpResponse;

pub const MONTHLY_LIMIT: &str = "x-ratelimit-requests-limit";
pub const MONTHLY_REMAINING: &str = "x-ratelimit-requests-remaining";
pub const MONTHLY_RESET: &str = "x-ratelimit-requests-reset";
pub const RATE_POLICY: &str = "ratelimit-policy";
pub const RATE: &str = "ratelimit";

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

/// The quota headers on `Quotas`, under the names handlers already call.
pub trait QuotaHeaders {
    /// The tenant's quota headers; `rate_remaining` from the call's admission, if any.
    fn headers(&self, tenant: &Tenant, rate_remaining: Option<u32>) -> HeaderMap;
    /// Puts the quota headers on a `/v1` answer.
    fn stamp(&self, response: &mut HttpResponse, tenant: &Tenant, rate_remaining: Option<u32>);
}

impl QuotaHeaders for Quotas {
    fn headers(&self, tenant: &Tenant, rate_remaining: Option<u32>) -> HeaderMap {
        headers_for(&self.standing(tenant, rate_remaining))
    }

    fn stamp(&self, response: &mut HttpResponse, tenant: &Tenant, rate_remaining: Option<u32>) {
        for (name, value) in self.headers(tenant, rate_remaining).iter() {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
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
