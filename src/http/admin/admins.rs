//! Admin accounts: login, list, create, delete, and changing one's own password.

use crate::db::constraint_violated;
use crate::db::Db;
use crate::http::admin::audit::{self, Actor};
use crate::http::error::ApiError;
use crate::http::extract::AdminCaller;
use crate::services::auth::{password, Auth, Change};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const MIN_PASSWORD_CHARS: usize = 12;

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

#[derive(Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AdminView {
    pub id: Uuid,
    pub username: String,
    pub created_at: DateTime<Utc>,
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

fn check_username(name: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'@'));
    ok.then_some(()).ok_or_else(|| {
        ApiError::unprocessable("username must be 1 to 64 characters of A-Za-z0-9_-.@")
    })
}

fn check_password(pw: &SecretString) -> Result<(), ApiError> {
    if pw.expose_secret().chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::unprocessable(format!(
            "password must be at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

/// Creates an admin (the API and `wa-gateway admin create-admin`); 409 when the name is taken.
pub async fn insert_admin(
    pool: &Db,
    actor: &Actor,
    username: &str,
    password: &SecretString,
) -> Result<AdminView, ApiError> {
    check_username(username)?;
    check_password(password)?;
    let hash = password::hash(password.expose_secret().to_owned()).await?;
    let mut tx = pool.begin().await?;
    let created: AdminView = sqlx::query_as(
        "INSERT INTO admins (id, username, password_hash) VALUES ($1, $2, $3) RETURNING id, username, created_at",
    )
    .bind(Uuid::now_v7())
    .bind(username)
    .bind(hash)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        if constraint_violated(&e, "admins_username_key") {
            ApiError::conflict(format!("an admin named `{username}` already exists"))
        } else {
            e.into()
        }
    })?;
    audit::record(
        &mut *tx,
        actor,
        "admin.create",
        "admin",
        &created.id.to_string(),
        serde_json::json!({"username": username}),
    )
    .await?;
    tx.commit().await?;
    Ok(created)
}

/// Exchange an admin's username and password for an access token
#[utoipa::path(
    post,
    path = "/admin/v1/login",
    tag = "Admin",
    operation_id = "adminLogin",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "An access token", body = TokenResponse),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Wrong username or password", body = ErrorBody),
        (status = 429, description = "Too many failed attempts for this username from this address", body = ErrorBody),
    ),
    security(())
)]
pub async fn login(
    req: HttpRequest,
    pool: web::Data<Db>,
    auth: web::Data<Auth>,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let addr = audit::client_addr(&req).unwrap_or_default();
    let grant = auth.login(&body.username, &body.password, &addr).await?;
    issued(
        &req,
        pool.get_ref(),
        &auth,
        grant.admin_id,
        &body.username,
        grant.token,
    )
    .await
}

/// Audits the login and answers the token.
async fn issued(
    req: &HttpRequest,
    pool: &Db,
    auth: &Auth,
    id: Uuid,
    username: &str,
    token: String,
) -> Result<HttpResponse, ApiError> {
    let actor = Actor::of(
        &AdminCaller {
            id,
            username: username.to_owned(),
        },
        req,
    );
    audit::record(
        pool,
        &actor,
        "admin.login",
        "admin",
        &id.to_string(),
        serde_json::json!({}),
    )
    .await?;
    Ok(HttpResponse::Ok().json(TokenResponse {
        access_token: token,
        token_type: "Bearer".to_owned(),
        expires_in: auth.jwt.ttl.as_secs(),
    }))
}

/// List admins
#[utoipa::path(
    get,
    path = "/admin/v1/admins",
    tag = "Admin",
    operation_id = "adminListAdmins",
    responses(
        (status = 200, description = "Every admin", body = [AdminView]),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
    ),
    security(("admin_jwt" = []))
)]
pub async fn list_admins(
    _admin: AdminCaller,
    pool: web::Data<Db>,
) -> Result<HttpResponse, ApiError> {
    let admins: Vec<AdminView> =
        sqlx::query_as("SELECT id, username, created_at FROM admins ORDER BY username")
            .fetch_all(pool.get_ref())
            .await?;
    Ok(HttpResponse::Ok().json(admins))
}

/// Create an admin
#[utoipa::path(
    post,
    path = "/admin/v1/admins",
    tag = "Admin",
    operation_id = "adminCreateAdmin",
    request_body = NewAdmin,
    responses(
        (status = 201, description = "The new admin", body = AdminView),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 409, description = "The username is taken", body = ErrorBody),
        (status = 422, description = "Invalid username or too short a password", body = ErrorBody),
    ),
    security(("admin_jwt" = []))
)]
pub async fn create_admin(
    admin: AdminCaller,
    req: HttpRequest,
    pool: web::Data<Db>,
    body: web::Json<NewAdmin>,
) -> Result<HttpResponse, ApiError> {
    let created = insert_admin(
        pool.get_ref(),
        &Actor::of(&admin, &req),
        &body.username,
        &body.password,
    )
    .await?;
    Ok(HttpResponse::Created().json(created))
}

/// Delete an admin; its tokens stop working at once
#[utoipa::path(
    delete,
    path = "/admin/v1/admins/{admin_id}",
    tag = "Admin",
    operation_id = "adminDeleteAdmin",
    params(("admin_id" = Uuid, Path, description = "The admin's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such admin", body = ErrorBody),
        (status = 409, description = "The last admin cannot be deleted", body = ErrorBody),
    ),
    security(("admin_jwt" = []))
)]
pub async fn delete_admin(
    admin: AdminCaller,
    req: HttpRequest,
    pool: web::Data<Db>,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let target = path.into_inner();
    let mut tx = pool.begin().await?;
    // Serialises concurrent deletions, so two cannot remove the last two admins.
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM admins FOR UPDATE")
        .fetch_all(&mut *tx)
        .await?;
    if !ids.contains(&target) {
        return Err(ApiError::not_found(format!("no admin with id {target}")));
    }
    if ids.len() == 1 {
        return Err(ApiError::conflict("the last admin cannot be deleted"));
    }
    sqlx::query("DELETE FROM admins WHERE id = $1")
        .bind(target)
        .execute(&mut *tx)
        .await?;
    Change::Admin(target).announce(&mut *tx).await?;
    audit::record(
        &mut *tx,
        &Actor::of(&admin, &req),
        "admin.delete",
        "admin",
        &target.to_string(),
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Change the calling admin's password; every token issued before stops working
#[utoipa::path(
    put,
    path = "/admin/v1/admins/me/password",
    tag = "Admin",
    operation_id = "adminChangeOwnPassword",
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed"),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 403, description = "The current password is wrong", body = ErrorBody),
        (status = 422, description = "The new password is too short", body = ErrorBody),
    ),
    security(("admin_jwt" = []))
)]
pub async fn change_own_password(
    admin: AdminCaller,
    req: HttpRequest,
    pool: web::Data<Db>,
    auth: web::Data<Auth>,
    body: web::Json<PasswordChange>,
) -> Result<HttpResponse, ApiError> {
    check_password(&body.new_password)?;
    let hash: Option<String> = sqlx::query_scalar("SELECT password_hash FROM admins WHERE id = $1")
        .bind(admin.id)
        .fetch_optional(pool.get_ref())
        .await?;
    let ok = auth
        .verify_secret(body.current_password.expose_secret().to_owned(), hash)
        .await?;
    if !ok {
        return Err(ApiError::forbidden("the current password is wrong"));
    }
    let new_hash = password::hash(body.new_password.expose_secret().to_owned()).await?;
    let mut tx = pool.begin().await?;
    // Every token issued before now carries the old version: refused from the commit on.
    sqlx::query(
        "UPDATE admins SET password_hash = $1, token_version = token_version + 1 WHERE id = $2",
    )
    .bind(new_hash)
    .bind(admin.id)
    .execute(&mut *tx)
    .await?;
    Change::Admin(admin.id).announce(&mut *tx).await?;
    audit::record(
        &mut *tx,
        &Actor::of(&admin, &req),
        "admin.change_password",
        "admin",
        &admin.id.to_string(),
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
