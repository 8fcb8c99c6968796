//! The store's errors: what a caller can act on (nothing there, a uniqueness rule, the
//! database away) apart from everything else, which is ours to log. No HTTP here; the HTTP
//! layer maps these to the error shape in `http::error`.

/// SQLSTATE 22P05 and 22021: text the database cannot store (a NUL character, invalid bytes).
const UNTRANSLATABLE: &str = "22P05";
const INVALID_BYTES: &str = "22021";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row the caller named does not exist (or is not the caller's).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness or foreign-key rule refused the change; `message` is for the caller.
    #[error("{message}")]
    Conflict {
        constraint: &'static str,
        message: String,
    },
    /// A text value PostgreSQL cannot store: the statement failed whole, nothing changed.
    #[error("text values may not contain NUL (\\u0000) characters")]
    Untranslatable(#[source] sqlx::Error),
    /// The database is away or overloaded: no connection could be had, the connection broke,
    /// or the server is shutting down or starting up. Nothing the caller did; retrying later
    /// will do.
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error(transparent)]
    Other(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            _ if is_unavailable(&err) => Self::Unavailable(err),
            sqlx::Error::Database(e) if is_untranslatable(&**e) => Self::Untranslatable(err),
            _ => Self::Other(err),
        }
    }
}

/// Whether `err` says the database is away rather than that the statement was wrong: no
/// connection within the pool's timeout, a broken socket, the pool closed, or an answer of
/// SQLSTATE class 08 (connection exception) or 57P0x (the server shutting down, crashing,
/// starting up, or ending the session), which is what a restart looks like from the client.
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(e) => e
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P0")),
        _ => false,
    }
}

/// Whether PostgreSQL refused a text value it cannot store.
pub fn is_untranslatable(err: &dyn sqlx::error::DatabaseError) -> bool {
    matches!(err.code().as_deref(), Some(UNTRANSLATABLE | INVALID_BYTES))
}

/// realworld-axum-sqlx's `on_constraint`: turn one named constraint's violation into a
/// caller-facing conflict, leaving every other error as it was.
pub trait ResultExt<T> {
    fn on_constraint(
        self,
        constraint: &'static str,
        message: impl FnOnce() -> String,
    ) -> Result<T, StoreError>;
}

impl<T, E: Into<StoreError>> ResultExt<T> for Result<T, E> {
    fn on_constraint(
        self,
        constraint: &'static str,
        message: impl FnOnce() -> String,
    ) -> Result<T, StoreError> {
        self.map_err(|err| match err.into() {
            StoreError::Other(sqlx::Error::Database(db)) if db.constraint() == Some(constraint) => {
                StoreError::Conflict {
                    constraint,
                    message: message(),
                }
            }
            other => other,
        })
    }
}
