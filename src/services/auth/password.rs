//! argon2id hashing of admin passwords and key secrets, always off the async threads.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use std::sync::LazyLock;
use tokio::sync::Semaphore;

/// At most one argon2id computation per core at a time. Each takes ~19 MiB and tens of
/// milliseconds of CPU; unbounded, a burst of cold keys (or wrong secrets) would take
/// gigabytes and starve the request threads.
static SLOTS: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())));

/// Runs one argon2id computation on the blocking pool once a slot is free.
async fn bounded<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    let _slot = SLOTS.acquire().await?;
    Ok(tokio::task::spawn_blocking(work).await?)
}

/// Checked when the username is unknown, so a miss costs as much as a wrong password.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_now("not-a-real-password").expect("hashing the dummy password"));

fn hash_now(secret: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("argon2id: {e}"))?
        .to_string())
}

fn verify_now(secret: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(secret.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

pub async fn hash(secret: String) -> anyhow::Result<String> {
    bounded(move || hash_now(&secret)).await?
}

/// Verifies `secret` against `hash`, or against the dummy hash when there is none.
pub async fn verify(secret: String, hash: Option<String>) -> anyhow::Result<bool> {
    bounded(move || match hash {
        Some(hash) => verify_now(&secret, &hash),
        None => {
            verify_now(&secret, &DUMMY_HASH);
            false
        }
    })
    .await
}

/// A random password for the sandbox's first admin (24 base62 characters, ~142 bits).
pub fn random_password() -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::thread_rng(), 24)
}
