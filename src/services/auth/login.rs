//! An admin's login: throttled per (username, client address), slowed per address, one
//! check in flight per username, and an unknown username costs the same argon2id.

use crate::services::auth::throttle::{self, Reservation};
use crate::services::auth::{Auth, AuthError, Throttle};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use uuid::Uuid;

/// No admin's name is longer: a longer one is refused before anything.
use crate::services::tenancy::admins::MAX_USERNAME_BYTES;

/// A successful login: the admin, and its access token.
#[derive(Debug)]
pub struct LoginGrant {
    pub admin_id: Uuid,
    pub token: String,
    pub expires_in: Duration,
}

impl Auth {
    /// Exchanges `username` and `password`, presented from `client`, for a token.
    pub async fn login(
        &self,
        username: &str,
        password: &SecretString,
        client: &str,
    ) -> Result<LoginGrant, AuthError> {
        if username.len() > MAX_USERNAME_BYTES {
            return Err(AuthError::BadLogin);
        }
        let user_key = username.to_lowercase();
        let pair = throttle::pair(&user_key, client);
        if let Reservation::Refused { retry_after } = self.login_by_user.reserve(&pair).await? {
            return Err(AuthError::Throttled {
                throttle: Throttle::LoginFailures,
                retry_after,
            });
        }
        // An address failing for many names is slowed, never refused: behind a proxy it may
        // be everyone's.
        let by_addr = self.login_by_addr.failures(client).await?;
        if by_addr >= self.login_by_addr.limit {
            tokio::time::sleep(login_delay(by_addr)).await;
        }
        let checked = {
            let _turn = self.in_flight.turn(&format!("login {user_key}")).await;
            self.check_login(username, password).await
        };
        let (id, token_version) = match checked {
            Ok(Some(admin)) => admin,
            Ok(None) => return Err(self.login_failed(&pair, client).await),
            Err(e) => {
                self.login_by_user.release(&pair).await?;
                return Err(e);
            }
        };
        self.login_by_user.reset(&pair).await?;
        Ok(LoginGrant {
            admin_id: id,
            token: self.jwt.issue(id, token_version)?,
            expires_in: self.jwt.ttl,
        })
    }

    /// The admin's id and token version when the password is right.
    async fn check_login(
        &self,
        username: &str,
        password: &SecretString,
    ) -> Result<Option<(Uuid, i32)>, AuthError> {
        let row = crate::store::admins::credentials(&self.pool, username).await?;
        let (admin, hash) = row
            .map(|r| ((r.id, r.token_version), r.password_hash))
            .unzip();
        let ok = self
            .verify_secret(password.expose_secret().to_owned(), hash)
            .await?;
        Ok(admin.filter(|_| ok))
    }

    /// Counts the failure for the address (the pair's was reserved), waits, refuses.
    async fn login_failed(&self, pair: &str, client: &str) -> AuthError {
        let failures = match self.login_by_addr.record_failure(client).await {
            Ok(by_addr) => match self.login_by_user.failures(pair).await {
                Ok(by_pair) => by_pair.max(by_addr),
                Err(e) => return e.into(),
            },
            Err(e) => return e.into(),
        };
        tracing::warn!(client = %client, failures, "admin login failed");
        tokio::time::sleep(login_delay(failures)).await;
        AuthError::BadLogin
    }
}

/// How long a failed login waits before answering, growing with recent failures.
fn login_delay(failures: u32) -> Duration {
    if failures < 3 {
        return Duration::ZERO;
    }
    Duration::from_millis(250 << (failures - 3).min(3)).min(Duration::from_secs(2))
}
