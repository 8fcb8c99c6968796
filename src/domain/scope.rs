//! What a tenant key may do: one scope per `/v1` endpoint family, or `*` for all of them.

use crate::domain::Invalid;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    SessionsRead,
    SessionsWrite,
    MessagesSend,
    GroupsRead,
    GroupsWrite,
    ChannelsRead,
    ChannelsWrite,
    ContactsRead,
    PresenceRead,
    PresenceWrite,
    WebhooksRead,
    WebhooksWrite,
    UsageRead,
    /// The event log: `GET /v1/events`, its SSE stream and the WebSocket.
    EventsRead,
    /// Every scope, including ones added later.
    All,
}

impl Scope {
    pub const EVERY: [Scope; 15] = [
        Scope::SessionsRead,
        Scope::SessionsWrite,
        Scope::MessagesSend,
        Scope::GroupsRead,
        Scope::GroupsWrite,
        Scope::ChannelsRead,
        Scope::ChannelsWrite,
        Scope::ContactsRead,
        Scope::PresenceRead,
        Scope::PresenceWrite,
        Scope::WebhooksRead,
        Scope::WebhooksWrite,
        Scope::UsageRead,
        Scope::EventsRead,
        Scope::All,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Scope::SessionsRead => "sessions:read",
            Scope::SessionsWrite => "sessions:write",
            Scope::MessagesSend => "messages:send",
            Scope::GroupsRead => "groups:read",
            Scope::GroupsWrite => "groups:write",
            Scope::ChannelsRead => "channels:read",
            Scope::ChannelsWrite => "channels:write",
            Scope::ContactsRead => "contacts:read",
            Scope::PresenceRead => "presence:read",
            Scope::PresenceWrite => "presence:write",
            Scope::WebhooksRead => "webhooks:read",
            Scope::WebhooksWrite => "webhooks:write",
            Scope::UsageRead => "usage:read",
            Scope::EventsRead => "events:read",
            Scope::All => "*",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        Self::EVERY
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| {
                Invalid::new(
                    "scopes",
                    format!(
                        "unknown scope `{raw}`; known scopes: {}",
                        Self::EVERY.map(|s| s.as_str()).join(", ")
                    ),
                )
            })
    }
}

/// A key's scopes, normalised (sorted, no duplicates).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    pub fn parse_all(raw: &[String]) -> Result<Self, Invalid> {
        let mut scopes = raw
            .iter()
            .map(|s| Scope::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        scopes.sort_by_key(|s| s.as_str());
        scopes.dedup();
        if scopes.is_empty() {
            return Err(Invalid::new(
                "scopes",
                "scopes must name at least one scope",
            ));
        }
        Ok(Self(scopes))
    }

    /// From the database, where only valid names were ever written; unknown ones are dropped.
    pub fn from_stored(raw: &[String]) -> Self {
        Self(raw.iter().filter_map(|s| Scope::parse(s).ok()).collect())
    }

    pub fn admits(&self, scope: Scope) -> bool {
        self.0.iter().any(|s| *s == Scope::All || *s == scope)
    }

    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|s| s.as_str().to_owned()).collect()
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Scope::parse(&raw).map_err(|e| serde::de::Error::custom(e.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_round_trips_and_star_admits_all() {
        for s in Scope::EVERY {
            assert_eq!(Scope::parse(s.as_str()).unwrap(), s);
        }
        let star = Scopes::parse_all(&["*".into()]).unwrap();
        assert!(star.admits(Scope::GroupsWrite));
        let one = Scopes::parse_all(&["groups:read".into(), "groups:read".into()]).unwrap();
        assert!(one.admits(Scope::GroupsRead));
        assert!(!one.admits(Scope::GroupsWrite));
        assert_eq!(one.names(), vec!["groups:read"]);
        assert!(Scope::parse("groups:admin").is_err());
        assert!(Scopes::parse_all(&[]).is_err());
    }
}
