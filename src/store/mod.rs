//! The store: one module per family of tables, and the only code that writes them. It speaks
//! domain types and `StoreError`; it knows nothing of HTTP.

pub mod error;
pub mod idempotency;
pub mod sessions;
pub mod webhooks;

pub use error::{ResultExt, StoreError};
