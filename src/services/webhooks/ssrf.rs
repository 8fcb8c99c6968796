//! Where deliveries may go. A tenant's `webhookUrl` must not turn the gateway into a way into
//! its own network, nor into an oracle about it:
//!
//! - Every address in the IANA special-purpose registries (loopback, private, link-local with
//!   the cloud metadata addresses, shared, documentation, benchmarking, protocol assignments,
//!   Teredo, 6to4, local-use NAT64, unique-local, multicast, reserved...) is refused, and so is
//!   every IPv6 address outside global unicast (2000::/3). IPv4 inside IPv6 (mapped
//!   `::ffff:a.b.c.d` and the well-known NAT64 prefix `64:ff9b::/96`) is judged as the IPv4
//!   address it carries.
//! - An IPv4 literal must be spelt as four decimal numbers: decimal, octal, hex and short forms
//!   (`2130706433`, `0x7f.1`) are refused whatever they stand for.
//! - Every refusal of a target reads the same ("target not allowed"): it never names a
//!   resolved address, nor tells a name that did not resolve from one that resolved inside.
//!   [`TargetRefused::detail`] says what happened, for admins and logs.
//!
//! The check runs at registration and again at delivery on the address actually connected to
//! (so a DNS answer that changes cannot sneak past it). `WAGW_WEBHOOK_ALLOW_PRIVATE=true` turns
//! it all off (tests and labs).

use ipnet::{Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use url::{Host, Url};

/// How long registration waits for a name to resolve before refusing it.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetRefused {
    #[error("webhookUrl is not a valid URL: {0}")]
    Invalid(url::ParseError),
    #[error("webhookUrl must be an http:// or https:// URL")]
    Scheme,
    #[error("webhookUrl must name a host")]
    NoHost,
    #[error("webhookUrl must not carry credentials")]
    Credentials,
    /// The one answer tenants get for a target they may not use, whatever the reason.
    #[error("webhookUrl: target not allowed")]
    NotAllowed(Why),
}

/// Why a target was not allowed: for admins and logs only, never for the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    Internal(IpAddr),
    Unresolved(String),
    Spelling,
}

impl TargetRefused {
    /// What happened, in words an admin can act on (it may name an internal address).
    pub fn detail(&self) -> String {
        match self {
            Self::NotAllowed(Why::Internal(ip)) => format!(
                "the target is {ip}, an internal address (loopback, private or special-purpose)"
            ),
            Self::NotAllowed(Why::Unresolved(host)) => format!("{host} did not resolve"),
            Self::NotAllowed(Why::Spelling) => {
                "the target spells an IPv4 address other than as four decimal numbers".to_owned()
            }
            other => other.to_string(),
        }
    }
}

/// A `webhookUrl` as a tenant wrote it, parsed and checked without any lookup: scheme, host,
/// no userinfo, an address literal judged at once, and IPv4 literals spelt canonically.
pub fn parse_target(raw: &str, allow_private: bool) -> Result<Url, TargetRefused> {
    let url = Url::parse(raw).map_err(TargetRefused::Invalid)?;
    check_url(&url, allow_private)?;
    if let Some(Host::Ipv4(ip)) = url.host() {
        if !allow_private && written_host(raw) != Some(ip.to_string()) {
            return Err(TargetRefused::NotAllowed(Why::Spelling));
        }
    }
    Ok(url)
}

/// The host as written in `raw` (lowercased, without userinfo or port), for comparing with
/// what the URL parser made of it. `None` when it cannot be found, which refuses.
fn written_host(raw: &str) -> Option<String> {
    let (_, rest) = raw.trim().split_once("://")?;
    let authority = rest.split(['/', '?', '#', '\\']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => host_port,
    };
    Some(host.to_ascii_lowercase())
}

/// The checks of an already parsed URL that need no lookup.
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
        return Err(TargetRefused::NotAllowed(Why::Internal(ip)));
    }
    Ok(())
}

/// Resolves the URL's host and picks the first address deliveries may go to; the caller
/// connects to exactly that address. A name that does not resolve, or resolves only to
/// internal addresses, is not allowed. The caller bounds how long this may take.
pub async fn resolve(url: &Url, allow_private: bool) -> Result<SocketAddr, TargetRefused> {
    check_url(url, allow_private)?;
    let port = url.port_or_known_default().ok_or(TargetRefused::NoHost)?;
    let host = match url.host() {
        Some(Host::Ipv4(ip)) => return Ok(SocketAddr::new(IpAddr::V4(ip), port)),
        Some(Host::Ipv6(ip)) => return Ok(SocketAddr::new(IpAddr::V6(ip), port)),
        Some(Host::Domain(d)) => d.to_owned(),
        None => return Err(TargetRefused::NoHost),
    };
    let unresolved = || TargetRefused::NotAllowed(Why::Unresolved(host.clone()));
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|_| unresolved())?
        .collect();
    let mut refused = None;
    for addr in addrs {
        match check_ip(addr.ip(), allow_private) {
            Ok(()) => return Ok(addr),
            Err(e) => refused = Some(e),
        }
    }
    Err(refused.unwrap_or_else(unresolved))
}

/// [`resolve`] within `limit`; a lookup that takes longer counts as not resolving.
pub async fn resolve_within(
    url: &Url,
    allow_private: bool,
    limit: Duration,
) -> Result<SocketAddr, TargetRefused> {
    let host = url.host_str().unwrap_or_default().to_owned();
    tokio::time::timeout(limit, resolve(url, allow_private))
        .await
        .unwrap_or(Err(TargetRefused::NotAllowed(Why::Unresolved(host))))
}

/// Whether deliveries to `ip` would reach something other than the public internet.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

const fn v6(segments: [u16; 8], len: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), len)
}

/// The IANA IPv4 Special-Purpose Address Registry
/// (iana.org/assignments/iana-ipv4-special-registry), every entry, including those it marks
/// globally reachable (anycast services, never a receiver), plus multicast 224.0.0.0/4 (the
/// IPv4 Multicast Address Space Registry). Entries nested in a listed block are covered by it.
const SPECIAL_V4: &[Ipv4Net] = &[
    v4(0, 0, 0, 0, 8),       // "this network" (RFC 791)
    v4(10, 0, 0, 0, 8),      // private use (RFC 1918)
    v4(100, 64, 0, 0, 10),   // shared address space, carrier-grade NAT (RFC 6598)
    v4(127, 0, 0, 0, 8),     // loopback
    v4(169, 254, 0, 0, 16),  // link local, 169.254.169.254 metadata included (RFC 3927)
    v4(172, 16, 0, 0, 12),   // private use
    v4(192, 0, 0, 0, 24), // IETF protocol assignments: 192.0.0.0/29, .8, .9, .10, .170, .171, .192
    v4(192, 0, 2, 0, 24), // documentation, TEST-NET-1
    v4(192, 31, 196, 0, 24), // AS112-v4
    v4(192, 52, 193, 0, 24), // AMT
    v4(192, 88, 99, 0, 24), // deprecated 6to4 relay anycast (RFC 7526)
    v4(192, 168, 0, 0, 16), // private use
    v4(192, 175, 48, 0, 24), // direct delegation AS112
    v4(198, 18, 0, 0, 15), // benchmarking (RFC 2544)
    v4(198, 51, 100, 0, 24), // documentation, TEST-NET-2
    v4(203, 0, 113, 0, 24), // documentation, TEST-NET-3
    v4(224, 0, 0, 0, 4),  // multicast
    v4(240, 0, 0, 0, 4),  // reserved, 255.255.255.255 limited broadcast included
];

/// The entries of the IANA IPv6 Special-Purpose Address Registry
/// (iana.org/assignments/iana-ipv6-special-registry) inside global unicast 2000::/3; everything
/// outside 2000::/3 is refused anyway (::, ::1, IPv4-compatible ::/96, SIIT ::ffff:0:0:0/96,
/// local-use NAT64 64:ff9b:1::/48, discard 100::/64, SRv6 5f00::/16, unique local fc00::/7,
/// link local fe80::/10, site local fec0::/10, multicast ff00::/8), except the two forms that
/// carry an IPv4 address, which is judged instead.
const SPECIAL_V6: &[Ipv6Net] = &[
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), // IETF protocol assignments: Teredo 2001::/32, ORCHID...
    v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), // documentation
    v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16), // 6to4 (deprecated, RFC 7526)
    v6([0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0], 48), // direct delegation AS112
    v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), // documentation (RFC 9637)
];

const GLOBAL_UNICAST: Ipv6Net = v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3);
/// Well-known NAT64 (RFC 6052): the translator reaches the IPv4 address in the last 32 bits.
const NAT64: Ipv6Net = v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96);

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    SPECIAL_V4.iter().any(|net| net.contains(&ip))
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_internal_v4(v4);
    }
    if NAT64.contains(&ip) {
        let [.., a, b, c, d] = ip.octets();
        return is_internal_v4(Ipv4Addr::new(a, b, c, d));
    }
    !GLOBAL_UNICAST.contains(&ip) || SPECIAL_V6.iter().any(|net| net.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn internal(s: &str) -> bool {
        is_internal(s.parse().unwrap())
    }

    #[test]
    fn special_purpose_ranges_are_refused() {
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
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "100.64.0.1",
            "192.0.0.8",
            "192.0.0.9",
            "192.0.0.192",
            "192.0.2.1",
            "192.88.99.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "::1",
            "::",
            "::10.0.0.1",
            "::8.8.8.8",
            "::ffff:0:a00:1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "100::1",
            "5f00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::10.0.0.1",
            "64:ff9b:1::a00:1",
            "64:ff9b:1::808:808",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:db8::1",
            "2001:2::1",
            "2002:7f00:1::",
            "2002:808:808::",
            "2620:4f:8000::1",
            "3fff::1",
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
            "192.0.1.1",
            "198.20.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(!internal(ip), "{ip} should pass");
        }
    }

    #[test]
    fn ipv4_literals_must_be_spelt_as_four_decimal_numbers() {
        for raw in [
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://127.1/",
        ] {
            assert!(
                matches!(parse_target(raw, false), Err(TargetRefused::NotAllowed(_))),
                "{raw}"
            );
        }
        // Public addresses too: the spelling alone is refused.
        for raw in [
            "http://134744072/",
            "http://0x8.8.8.8/",
            "http://8.526344/",
            "http://8.8.8.8./",
            "http://%38.8.8.8/",
            "http://010.8.8.8/",
        ] {
            assert_eq!(
                parse_target(raw, false),
                Err(TargetRefused::NotAllowed(Why::Spelling)),
                "{raw}"
            );
        }
        for raw in [
            "http://8.8.8.8/",
            "HTTPS://8.8.8.8:8443/x?y#z",
            "http://8.8.8.8\\x",
        ] {
            assert!(parse_target(raw, false).is_ok(), "{raw}");
        }
        assert!(parse_target("http://2130706433/", true).is_ok());
    }

    #[test]
    fn urls_are_checked_before_any_lookup() {
        assert_eq!(
            parse_target("ftp://example.com/x", false),
            Err(TargetRefused::Scheme)
        );
        assert_eq!(
            parse_target("http://user:pw@example.com/", false),
            Err(TargetRefused::Credentials)
        );
        assert!(matches!(
            parse_target("http://169.254.169.254/latest/meta-data", false),
            Err(TargetRefused::NotAllowed(Why::Internal(_)))
        ));
        assert!(matches!(
            parse_target("http://[::1]:8080/", false),
            Err(TargetRefused::NotAllowed(Why::Internal(_)))
        ));
        assert!(parse_target("http://127.0.0.1:9/", true).is_ok());
        assert!(parse_target("https://example.com/hook", false).is_ok());
    }

    #[test]
    fn refusals_read_the_same_and_name_no_address() {
        let internal = TargetRefused::NotAllowed(Why::Internal("10.20.30.40".parse().unwrap()));
        let unresolved = TargetRefused::NotAllowed(Why::Unresolved("corp.internal".into()));
        assert_eq!(internal.to_string(), unresolved.to_string());
        assert!(!internal.to_string().contains("10.20"));
        assert!(internal.detail().contains("10.20.30.40"));
    }

    #[tokio::test]
    async fn names_are_judged_by_what_they_resolve_to() {
        let url = Url::parse("http://localhost:9/hook").unwrap();
        assert!(matches!(
            resolve(&url, false).await,
            Err(TargetRefused::NotAllowed(Why::Internal(_)))
        ));
        let allowed = resolve(&url, true).await.unwrap();
        assert!(allowed.ip().is_loopback());
        assert_eq!(allowed.port(), 9);
        let nowhere = Url::parse("http://wagw-no-such-host.invalid/").unwrap();
        assert!(matches!(
            resolve_within(&nowhere, false, RESOLVE_TIMEOUT).await,
            Err(TargetRefused::NotAllowed(Why::Unresolved(_)))
        ));
    }
}
