//! How a subscription's deliveries are signed: the engine's scheme (`hmac-sha512`, the
//! tenant's `hmacKey`) or Standard Webhooks (`standard`, a `whsec_` secret), and the secret's
//! rules (Standard Webhooks spec: `whsec_` and the base64 of 24 to 64 random bytes).

use crate::domain::Invalid;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use rand::RngCore;
use std::fmt;

/// The prefix of a Standard Webhooks symmetric secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Bounds of the secret's key, in bytes (the spec's).
pub const MIN_SECRET_BYTES: usize = 24;
pub const MAX_SECRET_BYTES: usize = 64;
/// The key of a secret the gateway generates.
const GENERATED_SECRET_BYTES: usize = 32;

/// The scheme a subscription signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scheme {
    /// `X-Webhook-Hmac`: hex HMAC-SHA512 of the body with `hmacKey` (unsigned without one).
    #[default]
    HmacSha512,
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`.
    Standard,
}

impl Scheme {
    pub const NAMES: &'static [&'static str] = &["hmac-sha512", "standard"];

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::HmacSha512 => "hmac-sha512",
            Scheme::Standard => "standard",
        }
    }
}

impl std::str::FromStr for Scheme {
    type Err = Invalid;

    fn from_str(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "hmac-sha512" => Ok(Scheme::HmacSha512),
            "standard" => Ok(Scheme::Standard),
            _ => Err(Invalid::new(
                "signing",
                "signing must be hmac-sha512 or standard",
            )),
        }
    }
}

/// A Standard Webhooks secret, checked: `whsec_` and the base64 of 24 to 64 bytes. Its
/// `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    text: String,
    key: Vec<u8>,
}

impl WebhookSecret {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let bad = |why: &str| Invalid::new("secret", format!("secret {why}"));
        let encoded = raw
            .strip_prefix(SECRET_PREFIX)
            .ok_or_else(|| bad("must start with whsec_"))?;
        // A bound on the text before decoding anything: 64 bytes are 88 base64 characters.
        if encoded.len() > MAX_SECRET_BYTES.div_ceil(3) * 4 {
            return Err(bad(&format!(
                "must hold at most {MAX_SECRET_BYTES} bytes after whsec_"
            )));
        }
        let key = BASE64
            .decode(encoded)
            .map_err(|_| bad("must be whsec_ followed by base64"))?;
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
            return Err(bad(&format!(
                "must hold {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes after whsec_ (it holds {})",
                key.len()
            )));
        }
        Ok(Self {
            text: raw.to_owned(),
            key,
        })
    }

    /// A new random secret.
    pub fn generate() -> Self {
        let mut key = vec![0u8; GENERATED_SECRET_BYTES];
        rand::thread_rng().fill_bytes(&mut key);
        Self {
            text: format!("{SECRET_PREFIX}{}", BASE64.encode(&key)),
            key,
        }
    }

    /// The secret as the tenant writes it (`whsec_...`).
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The HMAC key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(********)")
    }
}

/// A subscription's signing as registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signing {
    HmacSha512 {
        key: Option<String>,
    },
    Standard {
        secret: WebhookSecret,
        /// Made by the gateway (none was given): shown once, in the answer that made it.
        generated: bool,
    },
}

impl Default for Signing {
    fn default() -> Self {
        Signing::HmacSha512 { key: None }
    }
}

impl Signing {
    pub fn scheme(&self) -> Scheme {
        match self {
            Signing::HmacSha512 { .. } => Scheme::HmacSha512,
            Signing::Standard { .. } => Scheme::Standard,
        }
    }

    pub fn hmac_key(&self) -> Option<&str> {
        match self {
            Signing::HmacSha512 { key } => key.as_deref(),
            Signing::Standard { .. } => None,
        }
    }

    pub fn secret(&self) -> Option<&WebhookSecret> {
        match self {
            Signing::Standard { secret, .. } => Some(secret),
            Signing::HmacSha512 { .. } => None,
        }
    }

    /// The secret to show once: only one the gateway generated.
    pub fn generated_secret(&self) -> Option<&str> {
        match self {
            Signing::Standard {
                secret,
                generated: true,
            } => Some(secret.expose()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_parse_back_and_differ() {
        let (a, b) = (WebhookSecret::generate(), WebhookSecret::generate());
        assert_ne!(a, b);
        assert!(a.expose().starts_with("whsec_"));
        assert_eq!(WebhookSecret::parse(a.expose()).unwrap(), a);
        assert_eq!(a.key().len(), 32);
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn secrets_are_whsec_and_24_to_64_bytes_of_base64() {
        let of = |n: usize| format!("whsec_{}", BASE64.encode(vec![7u8; n]));
        assert!(WebhookSecret::parse(&of(24)).is_ok());
        assert!(WebhookSecret::parse(&of(64)).is_ok());
        // The spec's example secret.
        assert!(WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
        for bad in [
            of(23),
            of(65),
            format!("whsec_{}", "A".repeat(100_000)),
            BASE64.encode([7u8; 32]),
            "whsec_not base64!".to_owned(),
            "whsec_".to_owned(),
            "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        ] {
            let e = WebhookSecret::parse(&bad).unwrap_err();
            assert_eq!(e.field, "secret");
            assert!(!e.message.contains(&bad) || bad.len() < 8, "{}", e.message);
        }
    }

    #[test]
    fn schemes_read_back_as_written() {
        for s in [Scheme::HmacSha512, Scheme::Standard] {
            assert_eq!(s.as_str().parse::<Scheme>(), Ok(s));
        }
        assert!("sha256".parse::<Scheme>().is_err());
    }
}
