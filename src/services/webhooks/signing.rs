//! The signing schemes:
//! - the upstream's, which the gateway both checks (ingress) and uses (delivery):
//!   `X-Webhook-Hmac` = lowercase hex HMAC-SHA512 of the raw body, `X-Webhook-Hmac-Algorithm:
//!   sha512`;
//! - Standard Webhooks (delivery, `signing: "standard"`): `webhook-signature` = `v1,` and the
//!   base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`, one per secret in use,
//!   space-separated.

use crate::domain::webhook_signing::WebhookSecret;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::distributions::{Alphanumeric, DistString};
use sha2::{Sha256, Sha512};

pub const HMAC_HEADER: &str = "x-webhook-hmac";
pub const ALGORITHM_HEADER: &str = "x-webhook-hmac-algorithm";
pub const ALGORITHM: &str = "sha512";
pub const REQUEST_ID_HEADER: &str = "x-webhook-request-id";
pub const TIMESTAMP_HEADER: &str = "x-webhook-timestamp";

/// Standard Webhooks' headers.
pub const STANDARD_ID_HEADER: &str = "webhook-id";
pub const STANDARD_TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const STANDARD_SIGNATURE_HEADER: &str = "webhook-signature";

type HmacSha512 = Hmac<Sha512>;
type HmacSha256 = Hmac<Sha256>;

/// `webhook-signature` for a delivery: `v1,<base64>` for each secret, space-separated.
pub fn standard_signature<'a>(
    secrets: impl IntoIterator<Item = &'a WebhookSecret>,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .into_iter()
        .map(|secret| {
            let mut mac =
                HmacSha256::new_from_slice(secret.key()).expect("HMAC takes keys of any length");
            mac.update(format!("{id}.{timestamp}.").as_bytes());
            mac.update(body);
            format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn sign(key: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha512::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Constant-time check of a hex signature; anything that is not hex simply fails.
pub fn verify(key: &[u8], body: &[u8], signature_hex: &str) -> bool {
    let Ok(signature) = hex::decode(signature_hex.trim()) else {
        return false;
    };
    let mut mac = HmacSha512::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.verify_slice(&signature).is_ok()
}

/// A random secret for URLs and keys: 43 alphanumerics is over 256 bits.
pub fn random_secret() -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), 43)
}

#[cfg(test)]
mod tests {
    use super::*;

    // UPSTREAM.md's test vector.
    const BODY: &str = r#"{"event":"message","session":"default","engine":"WEBJS"}"#;
    const SIGNATURE: &str = "208f8a55dde9e05519e898b10b89bf0d0b3b0fdf11fdbf09b6b90476301b98d8097c462b2b17a6ce93b6b47a136cf2e78a33a63f6752c2c1631777076153fa89";

    #[test]
    fn matches_the_upstream_test_vector() {
        assert_eq!(sign(b"my-secret-key", BODY.as_bytes()), SIGNATURE);
        assert!(verify(b"my-secret-key", BODY.as_bytes(), SIGNATURE));
    }

    #[test]
    fn refuses_wrong_key_body_or_garbage() {
        assert!(!verify(b"other-key", BODY.as_bytes(), SIGNATURE));
        assert!(!verify(b"my-secret-key", b"{}", SIGNATURE));
        assert!(!verify(b"my-secret-key", BODY.as_bytes(), "zz"));
        assert!(!verify(b"my-secret-key", BODY.as_bytes(), ""));
        assert!(!verify(
            b"my-secret-key",
            BODY.as_bytes(),
            &SIGNATURE[..SIGNATURE.len() - 2]
        ));
    }

    // The Standard Webhooks spec's test vector.
    #[test]
    fn standard_signatures_match_the_spec() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = standard_signature(
            [&secret],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let other = WebhookSecret::generate();
        let both = standard_signature([&secret, &other], "msg_1", 1, b"{}");
        let parts: Vec<&str> = both.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], standard_signature([&secret], "msg_1", 1, b"{}"));
    }

    #[test]
    fn secrets_are_long_and_distinct() {
        let (a, b) = (random_secret(), random_secret());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }
}
