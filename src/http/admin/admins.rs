//! The admin API's admin accounts: login, list, create, delete, and changing one's own
//! password (`services::tenancy::admins` and `store::admins` do the work).

use crate::http::admin::answers::MalformedBody;
use crate::http::error::ApiError;
use crate::http::extract::AdminCaller;
use crate::http::state::AppState;
use crate::services::tenancy::admins;
use crate::store::audit::{self, Actor, Audit};
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use crate::services::tenancy::admins::MIN_PASSWORD_CHARS;
pub use crate::store::admins::AdminView;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(example = "admin")]
    pub username: String,
    #[schema(value_type = String, example = "correct-horse-battery-staple")]
    pub password: SecretString,
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// HS256 JWT to send as `Authorization: Bearer <token>` on `/admin/v1/*`.
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until the token expires.
    #[schema(example = 3600)]
    pub expires_in: u64,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAdmin {
    #[schema(example = "alice")]
    pub username: String,
    /// At least 12 characters.
    #[schema(value_type = String)]
    pub password: SecretString,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    #[schema(value_type = String)]
    pub current_password: SecretString,
    /// At least 12 characters.
    #[schema(value_type = String)]
    pub new_password: SecretString,
}

/// Exchange an admin's username and password for an access token
#[utoipa::path(post, path = "/admin/v1/login", tag = "Admin", operation_id = "adminLogin",
    request_body = LoginRequest,
    responses((status = 200, description = "An access token", body = TokenResponse), MalformedBody, (status = 401, description = "Wrong username or password", body = ErrorBody), (status = 429, description = "Too many failed attempts for this username from this address", body = ErrorBody)))]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let addr = crate::http::admin::audit::client_addr(&req).unwrap_or_default();
    let grant = state
        .auth
        .login(&body.username, &body.password, &addr)
        .await?;
    let admin = AdminCaller {
        id: grant.admin_id,
        username: body.username,
    };
    let audit = Audit::new(
        "admin.login",
        "admin",
        grant.admin_id,
        serde_json::json!({}),
    );
    audit::record(&state.db, &Actor::of(&admin, &req), &audit).await?;
    Ok(HttpResponse::Ok().json(TokenResponse {
        access_token: grant.token,
        token_type: "Bearer".to_owned(),
        expires_in: grant.expires_in.as_secs(),
    }))
}

/// List admins
#[utoipa::path(get, path = "/admin/v1/admins", tag = "Admin", operation_id = "adminListAdmins",
    responses((status = 200, description = "Every admin", body = [AdminView])))]
pub async fn list_admins(
    _admin: AdminCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(crate::store::admins::list(&state.db).await?))
}

/// Create an admin
#[utoipa::path(post, path = "/admin/v1/admins", tag = "Admin", operation_id = "adminCreateAdmin",
    request_body = NewAdmin,
    responses((status = 201, description = "The new admin", body = AdminView), MalformedBody, (status = 409, description = "The username is taken", body = ErrorBody), (status = 422, description = "Invalid username or too short a password", body = ErrorBody)))]
pub async fn create_admin(
    admin: AdminCaller,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<NewAdmin>,
) -> Result<HttpResponse, ApiError> {
    let actor = Actor::of(&admin, &req);
    let created = admins::create(&state.db, &actor, &body.username, &body.password).await?;
    Ok(HttpResponse::Created().json(created))
}

/// Delete an admin; its tokens stop working at once
#[utoipa::path(delete, path = "/admin/v1/admins/{admin_id}", tag = "Admin",
    operation_id = "adminDeleteAdmin",
    params(("admin_id" = Uuid, Path, description = "The admin's id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such admin", body = ErrorBody), (status = 409, description = "The last admin cannot be deleted", body = ErrorBody)))]
pub async fn delete_admin(
    admin: AdminCaller,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    admins::delete(&state.db, &Actor::of(&admin, &req), path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Change the calling admin's password; every token issued before stops working
#[utoipa::path(put, path = "/admin/v1/admins/me/password", tag = "Admin",
    operation_id = "adminChangeOwnPassword", request_body = PasswordChange,
    responses((status = 204, description = "Changed"), MalformedBody, (status = 403, description = "The current password is wrong", body = ErrorBody), (status = 422, description = "The new password is too short", body = ErrorBody)))]
pub async fn change_own_password(
    admin: AdminCaller,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<PasswordChange>,
) -> Result<HttpResponse, ApiError> {
    admins::check_password(&body.new_password)
        .map_err(crate::services::tenancy::TenancyError::from)?;
    let hash = crate::store::admins::password_hash(&state.db, admin.id).await?;
    let ok = state
        .auth
        .verify_secret(body.current_password.expose_secret().to_owned(), hash)
        .await?;
    if !ok {
        return Err(ApiError::forbidden("the current password is wrong"));
    }
    let actor = Actor::of(&admin, &req);
    admins::set_password(&state.db, &actor, admin.id, &body.new_password).await?;
    Ok(HttpResponse::NoContent().finish())
}
