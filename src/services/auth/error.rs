//! What authentication can fail with. No HTTP here: `http::error` words each for the caller.

use crate::store::StoreError;

/// Which count refused the attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// Wrong secrets for this key id from this client.
    KeyFailures,
    /// This key sends faster than its share.
    KeyRate,
    /// Failed logins for this username from this client.
    LoginFailures,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Every key that does not authenticate, whatever the reason.
    #[error("invalid API key")]
    InvalidKey,
    /// A wrong username or password, alike.
    #[error("invalid username or password")]
    BadLogin,
    /// No admin token, or one that is expired, forged, or of a deleted or changed admin.
    #[error("a valid admin access token is required")]
    InvalidAdminToken,
    #[error("this tenant is suspended")]
    Suspended,
    #[error("throttled ({throttle:?}) for {retry_after} s")]
    Throttled {
        throttle: Throttle,
        retry_after: u64,
    },
    /// Every argon2id permit is taken: the check was not run.
    #[error("too many credential checks are waiting")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for AuthError {
    fn from(err: sqlx::Error) -> Self {
        Self::Store(err.into())
    }
}

impl From<std::sync::Arc<sqlx::Error>> for AuthError {
    fn from(err: std::sync::Arc<sqlx::Error>) -> Self {
        match std::sync::Arc::try_unwrap(err) {
            Ok(err) => err.into(),
            // Shared with other waiters of one look-up: the class is kept, the cause logged.
            Err(shared) => match &*shared {
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                    Self::Store(StoreError::Unavailable(sqlx::Error::Protocol(
                        shared.to_string(),
                    )))
                }
                _ => Self::Internal(anyhow::anyhow!("{shared}")),
            },
        }
    }
}
