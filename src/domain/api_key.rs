//! The tenant key's wire format: `wagw_<key id>_<secret><checksum>`, all three base62.
//!
//! The fixed prefix lets secret scanners find leaked keys; the checksum lets us refuse a
//! mistyped or made-up key without touching the database or running argon2id.

use rand::Rng;
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "wagw_";
const ID_LEN: usize = 12;
/// 22 base62 characters: log2(62^22) ≈ 131 bits of secret.
const SECRET_LEN: usize = 22;
const CHECKSUM_LEN: usize = 6;
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A freshly generated key: the plaintext is handed out once, only the secret's hash is kept.
pub struct NewKey {
    pub id: String,
    pub secret: String,
    pub plaintext: String,
}

/// A key that has the right shape and checksum (not yet known to be valid).
#[derive(Debug, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    pub id: &'a str,
    pub secret: &'a str,
}

fn random_base62(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..62)] as char)
        .collect()
}

fn checksum(id: &str, secret: &str) -> String {
    let mut n = crc32fast::hash(format!("{PREFIX}{id}_{secret}").as_bytes()) as u64;
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).expect("ascii")
}

/// The wire form of a key id and secret (also lets tests forge well-formed wrong keys).
pub fn assemble(id: &str, secret: &str) -> String {
    format!("{PREFIX}{id}_{secret}{}", checksum(id, secret))
}

pub fn generate() -> NewKey {
    let id = random_base62(ID_LEN);
    let secret = random_base62(SECRET_LEN);
    let plaintext = assemble(&id, &secret);
    NewKey {
        id,
        secret,
        plaintext,
    }
}

/// The display prefix stored and listed: enough to recognise a key, nothing secret.
pub fn display_prefix(id: &str) -> String {
    format!("{PREFIX}{id}")
}

pub fn parse(raw: &str) -> Option<ParsedKey<'_>> {
    let rest = raw.strip_prefix(PREFIX)?;
    let (id, tail) = rest.split_once('_')?;
    let base62 = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
    if id.len() != ID_LEN || tail.len() != SECRET_LEN + CHECKSUM_LEN || !base62(id) || !base62(tail)
    {
        return None;
    }
    let (secret, sum) = tail.split_at(SECRET_LEN);
    (checksum(id, secret) == sum).then_some(ParsedKey { id, secret })
}

/// The cache key: a fast hash of the whole key, so the plaintext is never kept in memory.
pub fn fingerprint(raw: &str) -> [u8; 32] {
    Sha256::digest(raw.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_any_change_is_refused() {
        let key = generate();
        assert!(key.plaintext.starts_with("wagw_"));
        let parsed = parse(&key.plaintext).unwrap();
        assert_eq!(parsed.id, key.id);
        assert_eq!(parsed.secret, key.secret);
        // Flip one secret character: the checksum no longer matches.
        let mut bad = key.plaintext.clone().into_bytes();
        let i = PREFIX.len() + ID_LEN + 3;
        bad[i] = if bad[i] == b'a' { b'b' } else { b'a' };
        assert_eq!(parse(std::str::from_utf8(&bad).unwrap()), None);
        assert_eq!(parse("wagw_short_x"), None);
        assert_eq!(parse(&key.plaintext.replace("wagw_", "wagx_")), None);
        assert_eq!(parse(""), None);
        assert_ne!(generate().plaintext, key.plaintext);
    }
}
