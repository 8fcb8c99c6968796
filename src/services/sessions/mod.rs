//! Session ownership: which tenant owns which upstream session, under which name.

mod store;

pub use store::{OwnedSession, SessionStore, TenantSession};
