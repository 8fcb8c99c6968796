//! Session names: the tenant's, and the upstream's that the tenant never sees.

use crate::domain::Invalid;
use rand::distributions::{Alphanumeric, DistString};
use std::fmt;

/// Names that would be read as routes (`POST /v1/sessions/start` is not a session called
/// "start"), so they are refused at creation.
const RESERVED: &[&str] = &["start", "stop", "logout"];

/// A tenant's name for one of its sessions: 1 to 64 of `A-Za-z0-9_-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionName(String);

impl SessionName {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let valid = (1..=64).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(Invalid::new(
                "session",
                "session name must be 1 to 64 characters of A-Za-z0-9_-",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// For creation: also refuses the names that collide with routes.
    pub fn parse_new(raw: &str) -> Result<Self, Invalid> {
        let name = Self::parse(raw)?;
        if RESERVED.contains(&raw) {
            return Err(Invalid::new(
                "session",
                format!(
                    "session name `{raw}` is reserved (it collides with a route); choose another"
                ),
            ));
        }
        Ok(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name a session has on the hosted API. Random, so two tenants can both have a session
/// called `default`, and long enough that a string equal to it in an answer is this session
/// (which is what makes rewriting answers generically safe).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UpstreamSession(String);

impl UpstreamSession {
    pub fn generate() -> Self {
        Self(format!(
            "gw_{}",
            Alphanumeric.sample_string(&mut rand::thread_rng(), 20)
        ))
    }

    /// An upstream session named by an admin (adoption): any valid session name.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        SessionName::parse(raw).map(|n| Self(n.as_str().to_owned()))
    }

    pub fn from_db(raw: String) -> Self {
        Self(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(SessionName::parse("default").is_ok());
        assert!(SessionName::parse("a_b-C9").is_ok());
        assert!(SessionName::parse(&"x".repeat(64)).is_ok());
        for bad in ["", "a b", "ü", "a/b", &"x".repeat(65)] {
            assert!(SessionName::parse(bad).is_err(), "{bad}");
        }
        assert!(SessionName::parse("start").is_ok());
        assert!(SessionName::parse_new("start").is_err());
        assert!(SessionName::parse_new("logout").is_err());
    }

    #[test]
    fn upstream_names_are_valid_session_names_and_distinct() {
        let a = UpstreamSession::generate();
        let b = UpstreamSession::generate();
        assert_ne!(a, b);
        assert!(SessionName::parse(a.as_str()).is_ok());
    }
}
