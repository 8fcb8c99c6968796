//! Session ownership: which tenant owns which upstream session, under which name.

pub mod admin;
mod name;
mod store;

pub use name::{SessionName, UpstreamSession};
pub use store::{OwnedSession, SessionStore, TenantSession};
