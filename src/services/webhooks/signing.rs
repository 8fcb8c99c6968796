//! The upstream's signing scheme, which the gateway both checks (ingress) and uses (delivery):
//! `X-Webhook-Hmac` = lowercase hex HMAC-SHA512 of the raw body, `X-Webhook-Hmac-Algorithm:
//! sha512`.

use hmac::{Hmac, Mac};
use rand::distributions::{Alphanumeric, DistString};
use sha2::Sha512;

pub const HMAC_HEADER: &str = "x-webhook-hmac";
pub const ALGORITHM_HEADER: &str = "x-webhook-hmac-algorithm";
pub const ALGORITHM: &str = "sha512";
pub const REQUEST_ID_HEADER: &str = "x-webhook-request-id";
pub const TIMESTAMP_HEADER: &str = "x-webhook-timestamp";

type HmacSha512 = Hmac<Sha512>;

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

    #[test]
    fn secrets_are_long_and_distinct() {
        let (a, b) = (random_secret(), random_secret());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }
}
