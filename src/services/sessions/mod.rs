//! Session ownership: which tenant owns which upstream session, under which name.

mod store;

pub use store::{OwnedSession, SessionStore, TenantSession, CHANNEL};

use crate::store::StoreError;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("session limit reached: your quota allows {0} session(s); delete one first")]
    TenantFull(i32),
    #[error("the organisation's upstream plan allows {0} session(s), all in use")]
    OrganisationFull(u32),
    /// The calling tenant's row is gone (deleted while its key was still cached).
    #[error("the calling tenant no longer exists")]
    CallerGone,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A look-up shared by concurrent callers failed.
    #[error("listing sessions: {0}")]
    Lookup(Arc<sqlx::Error>),
}
