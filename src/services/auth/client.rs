//! The client's address: what failure limits count and the audit log records.
//!
//! The TCP peer, unless the peer is a proxy the operator trusts (`WAGW_TRUSTED_PROXIES`):
//! then the right-most `X-Forwarded-For` hop that is not itself a trusted proxy. Hops to the
//! left of it were written by the client and could be anything, so they are never believed.

use crate::services::auth::Auth;
use actix_web::{http::header::HeaderName, web, HttpRequest};
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The address of the client that sent `req` (None only when actix knows no peer).
pub fn client_addr(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let trusted = req
        .app_data::<web::Data<Auth>>()
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
