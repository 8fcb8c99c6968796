//! Where deliveries may go. A tenant's `webhookUrl` must not turn the gateway into a way into
//! its own network: loopback, private, link-local (the cloud metadata address 169.254.169.254
//! among them), unique-local, unspecified, multicast and reserved addresses are refused unless
//! `WAGW_WEBHOOK_ALLOW_PRIVATE=true`. The check runs at registration and again at delivery on
//! the address actually connected to (so a DNS answer that changes cannot sneak past it).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use url::{Host, Url};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetRefused {
    #[error("webhookUrl must be an http:// or https:// URL")]
    Scheme,
    #[error("webhookUrl must name a host")]
    NoHost,
    #[error("webhookUrl must not carry credentials")]
    Credentials,
    #[error("webhookUrl resolves to {0}, a loopback, private, link-local or otherwise internal address; deliveries there are refused")]
    Internal(IpAddr),
    #[error("webhookUrl's host {0} did not resolve")]
    Unresolved(String),
}

/// The static checks of a `webhookUrl`: scheme, host, no userinfo, and an address literal
/// (`http://10.0.0.1/`) refused at once.
pub fn check_url(url: &Url, allow_private: bool) -> Result<(), TargetRefused> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(TargetRefused::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetRefused::Credentials);
    }
    match url.host() {
        None => Err(TargetRefused::NoHost),
        Some(Host::Ipv4(ip)) => check_ip(IpAddr::V4(ip), allow_private),
        Some(Host::Ipv6(ip)) => check_ip(IpAddr::V6(ip), allow_private),
        Some(Host::Domain(_)) => Ok(()),
    }
}

fn check_ip(ip: IpAddr, allow_private: bool) -> Result<(), TargetRefused> {
    if !allow_private && is_internal(ip) {
        return Err(TargetRefused::Internal(ip));
    }
    Ok(())
}

/// Resolves the URL's host and picks the first address deliveries may go to; the caller
/// connects to exactly that address. A name that resolves only to internal addresses is
/// refused.
pub async fn resolve(url: &Url, allow_private: bool) -> Result<SocketAddr, TargetRefused> {
    check_url(url, allow_private)?;
    let port = url.port_or_known_default().ok_or(TargetRefused::NoHost)?;
    let host = match url.host() {
        Some(Host::Ipv4(ip)) => return Ok(SocketAddr::new(IpAddr::V4(ip), port)),
        Some(Host::Ipv6(ip)) => return Ok(SocketAddr::new(IpAddr::V6(ip), port)),
        Some(Host::Domain(d)) => d.to_owned(),
        None => return Err(TargetRefused::NoHost),
    };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|_| TargetRefused::Unresolved(host.clone()))?
        .collect();
    let mut refused = None;
    for addr in addrs {
        match check_ip(addr.ip(), allow_private) {
            Ok(()) => return Ok(addr),
            Err(e) => refused = Some(e),
        }
    }
    Err(refused.unwrap_or(TargetRefused::Unresolved(host)))
}

/// Whether deliveries to `ip` would reach something other than the public internet.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16, the metadata address included
        || ip.is_multicast()
        || ip.is_broadcast()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT, 100.64/10
        || a >= 240 // reserved
        || (a == 198 && (b == 18 || b == 19)) // benchmarking, 198.18/15
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    // IPv4 embedded in IPv6 (mapped, NAT64 64:ff9b::/96, 6to4 2002::/16) is judged as IPv4.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_internal_v4(v4);
    }
    let s = ip.segments();
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return is_internal_v4(Ipv4Addr::new(
            (s[6] >> 8) as u8,
            s[6] as u8,
            (s[7] >> 8) as u8,
            s[7] as u8,
        ));
    }
    if s[0] == 0x2002 {
        return is_internal_v4(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local, fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local, fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated), fec0::/10
        || (s[0] == 0 && s[1..6] == [0, 0, 0, 0, 0]) // IPv4-compatible ::a.b.c.d and friends
}

#[cfg(test)]
mod tests {
    use super::*;

    fn internal(s: &str) -> bool {
        is_internal(s.parse().unwrap())
    }

    #[test]
    fn internal_ranges_are_refused() {
        for ip in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "100.64.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
        ] {
            assert!(internal(ip), "{ip} should be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!internal(ip), "{ip} should pass");
        }
    }

    #[test]
    fn urls_are_checked_before_any_lookup() {
        let url = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            check_url(&url("ftp://example.com/x"), false),
            Err(TargetRefused::Scheme)
        );
        assert_eq!(
            check_url(&url("http://user:pw@example.com/"), false),
            Err(TargetRefused::Credentials)
        );
        assert!(matches!(
            check_url(&url("http://169.254.169.254/latest/meta-data"), false),
            Err(TargetRefused::Internal(_))
        ));
        assert!(matches!(
            check_url(&url("http://[::1]:8080/"), false),
            Err(TargetRefused::Internal(_))
        ));
        assert!(check_url(&url("http://127.0.0.1:9/"), true).is_ok());
        assert!(check_url(&url("https://example.com/hook"), false).is_ok());
    }

    #[tokio::test]
    async fn names_are_judged_by_what_they_resolve_to() {
        let url = Url::parse("http://localhost:9/hook").unwrap();
        assert!(matches!(
            resolve(&url, false).await,
            Err(TargetRefused::Internal(_))
        ));
        let allowed = resolve(&url, true).await.unwrap();
        assert!(allowed.ip().is_loopback());
        assert_eq!(allowed.port(), 9);
    }
}
