//! The store: one module per family of tables, and the only code that writes them. It speaks
//! domain types and `StoreError`; it knows nothing of HTTP.

pub mod admins;
pub mod audit;
pub mod error;
pub mod events;
pub mod idempotency;
pub mod keys;
pub mod pacing;
pub mod sessions;
pub mod tenants;
pub mod webhooks;

pub use error::{ResultExt, StoreError};

/// Which rows of a listing a page holds.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub limit: i64,
    pub offset: i64,
}

/// One page of a listing, and how many rows the whole listing has.
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
}
