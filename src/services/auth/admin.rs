//! The admin side of authentication: `AdminCaller`, the extractor every `/admin/v1` handler
//! takes, so no admin handler can be reached without a valid token of an existing admin.

use crate::http::error::ApiError;
use crate::services::auth::Auth;
use actix_web::http::header;
use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use uuid::Uuid;

pub const ADMIN_UNAUTHORIZED: &str = "a valid admin access token is required";

#[derive(Clone, Debug)]
pub struct AdminCaller {
    pub id: Uuid,
    pub username: String,
}

pub fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl FromRequest for AdminCaller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let auth = req.app_data::<web::Data<Auth>>().cloned();
        let token = bearer(req).map(str::to_owned);
        Box::pin(async move {
            let auth = auth.ok_or_else(|| ApiError::internal(anyhow::anyhow!("Auth not wired")))?;
            let claims = token
                .and_then(|t| auth.jwt.verify(&t))
                .ok_or_else(|| ApiError::unauthorized(ADMIN_UNAUTHORIZED))?;
            // A deleted admin's tokens stop working: the admin must still exist, and tokens
            // issued before its last password change stop working too.
            let admin = auth
                .admin_record(claims.sub)
                .await?
                .filter(|admin| admin.token_version == claims.ver)
                .ok_or_else(|| ApiError::unauthorized(ADMIN_UNAUTHORIZED))?;
            Ok(AdminCaller {
                id: claims.sub,
                username: admin.username,
            })
        })
    }
}
