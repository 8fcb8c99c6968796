//! The gateway's vocabulary: tenants, sessions, scopes, keys and events, with the rules that
//! make a value valid. No HTTP and no SQL here; every other layer builds on these types.

pub mod api_key;
pub mod error;
pub mod event_cursor;
pub mod events;
pub mod mode;
pub mod pacing;
pub mod scope;
pub mod session_name;
pub mod tenant;
pub mod webhook_signing;
pub mod webhooks;

pub use error::Invalid;
pub use event_cursor::EventCursor;
pub use mode::Mode;
pub use scope::{Scope, Scopes};
pub use session_name::{SessionName, UpstreamSession};
pub use tenant::{Plan, Quota, Tenant, TenantStatus};
