//! Tenancy: admins, tenants and their keys, as the admin API and the command line change
//! them. Every change is audited in its own transaction (`store::audit::AuditedTx`), and
//! announced to every replica when caches must drop something.

pub mod admins;
pub mod keys;
pub mod tenants;

use crate::domain::Invalid;
use crate::store::StoreError;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    /// A value breaks a rule (a name, a quota, a scope, a password's length).
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("no tenant with id {0}")]
    NoTenant(Uuid),
    #[error("the tenant has no key with id {0}")]
    NoKey(String),
    #[error("no admin with id {0}")]
    NoAdmin(Uuid),
    /// The change does not fit the current state (the last admin, a key already rotated).
    #[error("{0}")]
    Refused(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing a secret failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}
