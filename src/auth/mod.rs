//! TEMPORARY stub of the tenancy branch's interface so forwarding compiles; replaced at merge.
use crate::error::ApiError;
use actix_web::{dev::Payload, FromRequest, HttpRequest};
use std::future::{ready, Ready};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    SessionsRead,
    SessionsWrite,
    MessagesSend,
    GroupsRead,
    GroupsWrite,
    ChannelsRead,
    ChannelsWrite,
    ContactsRead,
    PresenceRead,
    PresenceWrite,
    WebhooksRead,
    WebhooksWrite,
    UsageRead,
}
impl Scope {
    pub fn as_str(&self) -> &'static str {
        "stub"
    }
}
#[derive(Clone, Debug)]
pub struct Quota {
    pub monthly_requests: Option<i64>,
    pub requests_per_second: Option<i32>,
    pub max_sessions: Option<i32>,
}
#[derive(Clone, Debug)]
pub struct Tenant {
    pub id: uuid::Uuid,
    pub name: String,
    pub quota: Quota,
}
#[derive(Clone, Debug)]
pub struct TenantKeyInfo {
    pub id: String,
    pub name: String,
    pub sessions: Option<Vec<String>>,
}
#[derive(Clone, Debug)]
pub struct TenantCaller {
    pub tenant: Arc<Tenant>,
    pub key: Arc<TenantKeyInfo>,
}
impl TenantCaller {
    pub fn require(&self, _scope: Scope) -> Result<(), ApiError> {
        Ok(())
    }
    pub fn may_use_session(&self, name: &str) -> bool {
        self.key
            .sessions
            .as_ref()
            .is_none_or(|s| s.iter().any(|n| n == name))
    }
}
impl FromRequest for TenantCaller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;
    fn from_request(_: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Err(ApiError::unauthorized("stub")))
    }
}
