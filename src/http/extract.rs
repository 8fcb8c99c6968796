//! The extractors that authenticate a request (realworld's `AuthUser`): a handler that takes
//! a `TenantCaller` or an `AdminCaller` cannot be reached without valid credentials, and its
//! body never re-checks. The checking itself is `services::auth`.

use crate::domain::Scope;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::services::auth::{Auth, Tenant, TenantKeyInfo};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{self, HeaderName};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use uuid::Uuid;

pub use crate::services::auth::INVALID_KEY;
pub const ADMIN_UNAUTHORIZED: &str = "a valid admin access token is required";

/// The key headers a client of the hosted API may already send, in order of preference.
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
const X_RAPIDAPI_KEY: HeaderName = HeaderName::from_static("x-rapidapi-key");

/// A `/v1` caller: an authenticated key of a tenant that is not suspended, within its
/// request limiter.
#[derive(Clone, Debug)]
pub struct TenantCaller {
    pub tenant: Arc<Tenant>,
    pub key: Arc<TenantKeyInfo>,
}

impl TenantCaller {
    /// 403 naming the scope when the key lacks it.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.key.scopes.admits(scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this API key lacks the `{}` scope",
                scope.as_str()
            )))
        }
    }

    pub fn may_use_session(&self, name: &str) -> bool {
        self.key
            .sessions
            .as_ref()
            .is_none_or(|s| s.iter().any(|n| n == name))
    }
}

/// An `/admin/v1` caller: a valid token of an admin that still exists.
#[derive(Clone, Debug)]
pub struct AdminCaller {
    pub id: Uuid,
    pub username: String,
}

/// The authentication service, from the app state.
pub fn auth(req: &HttpRequest) -> Option<Arc<Auth>> {
    req.app_data::<web::Data<AppState>>()
        .map(|state| state.auth.clone())
}

pub fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The query parameter the event stream routes also take the key in: a browser's
/// `EventSource` and `WebSocket` cannot send headers. Never logged (the access log writes the
/// path alone), and refused everywhere else.
pub const QUERY_KEY: &str = "x-api-key";
const QUERY_KEY_ELSEWHERE: &str = "the API key is taken in the `x-api-key` query parameter \
     only on /v1/events/stream and /v1/ws; send it in the `X-Api-Key` or `Authorization` header";

/// The key the request presents: a header, or on the stream routes the query parameter.
pub fn presented_key(req: &HttpRequest) -> Option<String> {
    if let Some(token) = bearer(req) {
        return Some(token.to_owned());
    }
    let in_header = [X_API_KEY, X_RAPIDAPI_KEY].iter().find_map(|name| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned())
    });
    in_header.or_else(|| {
        req.extensions()
            .get::<Marks>()
            .is_some_and(|m| m.key_in_query)
            .then(|| key_in_query(req))
            .flatten()
    })
}

fn key_in_query(req: &HttpRequest) -> Option<String> {
    crate::http::tenant::rewrite::query_param(req.query_string(), QUERY_KEY)
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
}

/// 401 for a request without a key: said plainly when the key came in the query of a route
/// that does not take it there.
fn no_key(req: &HttpRequest) -> ApiError {
    if key_in_query(req).is_some() {
        ApiError::unauthorized(QUERY_KEY_ELSEWHERE)
    } else {
        ApiError::unauthorized(INVALID_KEY)
    }
}

fn not_wired() -> ApiError {
    ApiError::internal(anyhow::anyhow!("Auth not wired"))
}

impl FromRequest for TenantCaller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let auth = auth(req);
        let key = presented_key(req).ok_or_else(|| no_key(req));
        let client = client_addr(req).map(|a| a.to_string());
        let req = req.clone();
        Box::pin(async move {
            let auth = auth.ok_or_else(not_wired)?;
            let key = key?;
            let caller = auth
                .authenticate_tenant(&key, client.as_deref().unwrap_or_default())
                .await?;
            let caller = TenantCaller {
                tenant: caller.tenant,
                key: caller.key,
            };
            // For `http::quota_headers`, which stamps every answer to an authenticated caller.
            req.extensions_mut().insert(caller.clone());
            let required = req.extensions().get::<Marks>().map(|m| m.scope);
            if let Some(scope) = required {
                caller.require(scope)?;
            }
            Ok(caller)
        })
    }
}

impl FromRequest for AdminCaller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let auth = auth(req);
        let token = bearer(req).map(str::to_owned);
        Box::pin(async move {
            let auth = auth.ok_or_else(not_wired)?;
            let admin = auth.authenticate_admin(token.as_deref()).await?;
            Ok(AdminCaller {
                id: admin.id,
                username: admin.username,
            })
        })
    }
}

// ---- the client's address ----------------------------------------------------------------
// The client's address: what failure limits count and the audit log records.
//
// The TCP peer, unless the peer is a proxy the operator trusts (`WAGW_TRUSTED_PROXIES`):
// then the right-most `X-Forwarded-For` hop that is not itself a trusted proxy. Hops to the
// left of it were written by the client and could be anything, so they are never believed.

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The address of the client that sent `req` (None only when actix knows no peer).
pub fn client_addr(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let auth = auth(req);
    let trusted = auth
        .as_ref()
        .map(|auth| auth.trusted_proxies.as_slice())
        .unwrap_or_default();
    if !is_trusted(peer, trusted) {
        return Some(peer);
    }
    let hops: Vec<&str> = req
        .headers()
        .get_all(X_FORWARDED_FOR)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    Some(from_forwarded(peer, &hops, trusted))
}

/// Walks the hops right to left from a trusted `peer`: the first untrusted one is the
/// client. A hop that does not parse ends the walk at the proxy that reported it.
fn from_forwarded(peer: IpAddr, hops: &[&str], trusted: &[IpNet]) -> IpAddr {
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(addr) = parse_hop(hop) else {
            break;
        };
        client = addr;
        if !is_trusted(addr, trusted) {
            break;
        }
    }
    client
}

fn is_trusted(addr: IpAddr, trusted: &[IpNet]) -> bool {
    let addr = addr.to_canonical();
    trusted.iter().any(|net| net.contains(&addr))
}

/// `1.2.3.4`, `2001:db8::1`, and the `1.2.3.4:5678` / `[2001:db8::1]:5678` some proxies write.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|a| a.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let trusted = nets(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.1");
        // The client forged a left-most hop; the proxy appended the real one.
        let hops = ["6.6.6.6", "203.0.113.7", "10.0.0.2"];
        assert_eq!(from_forwarded(peer, &hops, &trusted), ip("203.0.113.7"));
        assert_eq!(
            from_forwarded(peer, &["203.0.113.7:4431"], &trusted),
            ip("203.0.113.7")
        );
        assert_eq!(
            from_forwarded(peer, &["[2001:db8::1]:80"], &trusted),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn garbage_or_no_hops_leave_the_last_trusted_address() {
        let trusted = nets(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.1");
        assert_eq!(from_forwarded(peer, &[], &trusted), peer);
        assert_eq!(
            from_forwarded(peer, &["1.1.1.1", "nonsense"], &trusted),
            peer
        );
        assert_eq!(
            from_forwarded(peer, &["nonsense", "10.0.0.9"], &trusted),
            ip("10.0.0.9")
        );
    }

    #[test]
    fn mapped_addresses_match_their_ipv4_networks() {
        let trusted = nets(&["127.0.0.1/32"]);
        assert!(is_trusted(ip("::ffff:127.0.0.1"), &trusted));
        assert!(!is_trusted(ip("::ffff:127.0.0.2"), &trusted));
    }
}

/// What a route's table row says of its callers, left in the request by [`requiring`] for
/// the `TenantCaller` extractor: the scope is checked once the key is known (401 before 403)
/// and before the handler reads anything, and no handler states it again.
#[derive(Clone, Copy)]
pub struct Marks {
    scope: Scope,
    /// The key may come in the `x-api-key` query parameter ([`QUERY_KEY`]).
    key_in_query: bool,
}

impl Marks {
    /// A tenant route whose caller must hold `scope`.
    pub fn scope(scope: Scope) -> Self {
        Self {
            scope,
            key_in_query: false,
        }
    }

    /// An event stream route: its caller must hold `scope`, and may present the key in the
    /// query.
    pub fn stream(scope: Scope) -> Self {
        Self {
            scope,
            key_in_query: true,
        }
    }
}

/// Wraps a tenant route so that its caller is held to `marks`.
pub fn requiring<S>(
    marks: Marks,
) -> impl Transform<
    S,
    ServiceRequest,
    Response = ServiceResponse<impl MessageBody>,
    Error = actix_web::Error,
    InitError = (),
>
where
    S: Service<ServiceRequest, Response = ServiceResponse<BoxBody>, Error = actix_web::Error>
        + 'static,
{
    from_fn(move |req: ServiceRequest, next: Next<BoxBody>| async move {
        req.extensions_mut().insert(marks);
        next.call(req).await
    })
}
