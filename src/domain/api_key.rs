//! The tenant key's wire format: `wagw_<key id>_<secret><checksum>` for a live key,
//! `wagw_test_<key id>_<secret><checksum>` for a test key, all three parts base62.
//!
//! The fixed prefix lets secret scanners find leaked keys (and tell a harmless test key from a
//! live one); the checksum, over the whole prefix, lets us refuse a mistyped or made-up key
//! without touching the database or running argon2id. A key id never holds `_`, so a live key
//! cannot be read as a test key nor the reverse; the mode the text claims is still checked
//! against the stored key's (`services::auth`), since anyone can compute a checksum.

use crate::domain::Mode;
use rand::Rng;
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "wagw_";
/// What follows [`PREFIX`] in a test key.
pub const TEST_MARK: &str = "test_";
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
    /// The mode the key's text claims.
    pub mode: Mode,
}

/// `wagw_` or `wagw_test_`.
fn prefix(mode: Mode) -> &'static str {
    match mode {
        Mode::Live => PREFIX,
        Mode::Test => "wagw_test_",
    }
}

fn random_base62(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..62)] as char)
        .collect()
}

fn checksum(mode: Mode, id: &str, secret: &str) -> String {
    let mut n = crc32fast::hash(format!("{}{id}_{secret}", prefix(mode)).as_bytes()) as u64;
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).expect("ascii")
}

/// The wire form of a live key's id and secret (also lets tests forge well-formed wrong keys).
pub fn assemble(id: &str, secret: &str) -> String {
    assemble_in(Mode::Live, id, secret)
}

/// The wire form of a key id and secret in `mode`.
pub fn assemble_in(mode: Mode, id: &str, secret: &str) -> String {
    let sum = checksum(mode, id, secret);
    format!("{}{id}_{secret}{sum}", prefix(mode))
}

pub fn generate(mode: Mode) -> NewKey {
    let id = random_base62(ID_LEN);
    let secret = random_base62(SECRET_LEN);
    let plaintext = assemble_in(mode, &id, &secret);
    NewKey {
        id,
        secret,
        plaintext,
    }
}

/// The display prefix stored and listed: enough to recognise a key, nothing secret.
pub fn display_prefix(mode: Mode, id: &str) -> String {
    format!("{}{id}", prefix(mode))
}

pub fn parse(raw: &str) -> Option<ParsedKey<'_>> {
    let rest = raw.strip_prefix(PREFIX)?;
    let (mode, rest) = match rest.strip_prefix(TEST_MARK) {
        Some(rest) => (Mode::Test, rest),
        None => (Mode::Live, rest),
    };
    let (id, tail) = rest.split_once('_')?;
    let base62 = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
    if id.len() != ID_LEN || tail.len() != SECRET_LEN + CHECKSUM_LEN || !base62(id) || !base62(tail)
    {
        return None;
    }
    let (secret, sum) = tail.split_at(SECRET_LEN);
    (checksum(mode, id, secret) == sum).then_some(ParsedKey { id, secret, mode })
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
        let key = generate(Mode::Live);
        assert!(key.plaintext.starts_with("wagw_"));
        assert!(!key.plaintext.starts_with("wagw_test_"));
        let parsed = parse(&key.plaintext).unwrap();
        assert_eq!(parsed.id, key.id);
        assert_eq!(parsed.secret, key.secret);
        assert_eq!(parsed.mode, Mode::Live);
        // Flip one secret character: the checksum no longer matches.
        let mut bad = key.plaintext.clone().into_bytes();
        let i = PREFIX.len() + ID_LEN + 3;
        bad[i] = if bad[i] == b'a' { b'b' } else { b'a' };
        assert_eq!(parse(std::str::from_utf8(&bad).unwrap()), None);
        assert_eq!(parse("wagw_short_x"), None);
        assert_eq!(parse(&key.plaintext.replace("wagw_", "wagx_")), None);
        assert_eq!(parse(""), None);
        assert_ne!(generate(Mode::Live).plaintext, key.plaintext);
    }

    #[test]
    fn test_keys_carry_their_mark_and_neither_mode_reads_as_the_other() {
        let key = generate(Mode::Test);
        assert!(key.plaintext.starts_with("wagw_test_"));
        let parsed = parse(&key.plaintext).unwrap();
        assert_eq!((parsed.id, parsed.mode), (key.id.as_str(), Mode::Test));
        // The mark added to a live key, or taken off a test key, breaks the checksum.
        let live = generate(Mode::Live);
        let marked = live.plaintext.replacen("wagw_", "wagw_test_", 1);
        assert_eq!(parse(&marked), None);
        assert_eq!(
            parse(&key.plaintext.replacen("wagw_test_", "wagw_", 1)),
            None
        );
        // Rebuilt with a checksum for the other mode it parses, as that mode only.
        let forged = assemble_in(Mode::Test, &live.id, &live.secret);
        assert_eq!(parse(&forged).unwrap().mode, Mode::Test);
        assert_eq!(display_prefix(Mode::Test, "abc"), "wagw_test_abc");
    }
}
