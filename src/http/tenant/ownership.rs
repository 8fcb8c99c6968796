//! Which session a tenant's call may act on: the one HTTP answer for "not yours", shared by
//! the forwarded rows and the tenant's webhook routes.

use crate::domain::{SessionName, UpstreamSession};
use crate::http::error::ApiError;
use crate::http::extract::TenantCaller;
use crate::services::sessions::SessionStore;

/// The upstream session behind a name the tenant gave; 404 (exactly as for a missing one)
/// when the tenant does not own it, its key may not use it, or it is of the other mode (a
/// test key never sees a live session, nor a live key a test one).
pub async fn owned_session(
    store: &SessionStore,
    caller: &TenantCaller,
    name: &str,
) -> Result<(SessionName, UpstreamSession), ApiError> {
    let not_found = || ApiError::not_found(format!("session \"{name}\" not found"));
    let Ok(parsed) = SessionName::parse(name) else {
        return Err(not_found());
    };
    if !caller.may_use_session(name) {
        return Err(not_found());
    }
    let upstream = store
        .resolve(caller.tenant.id, caller.key.mode, &parsed)
        .await?
        .ok_or_else(not_found)?;
    Ok((parsed, upstream))
}
