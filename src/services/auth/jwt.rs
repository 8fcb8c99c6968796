//! Admin access tokens: HS256 only, short-lived, with `sub`, `iat`, `exp`, `jti`, `iss`,
//! `aud` and `ver`.
//!
//! `iss` (`WAGW_JWT_ISSUER`) and `aud` keep tokens of one deployment from working on another
//! that shares the secret; `ver` is the admin's token version when the token was issued, and
//! a password change bumps it, ending every earlier token.

use crate::db::Db;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The admin's id.
    pub sub: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
    pub iss: String,
    pub aud: String,
    /// The admin's `token_version` at issue.
    pub ver: i32,
}

/// The audience of every admin token: the admin API, nothing else.
pub const AUDIENCE: &str = "wa-gateway-admin";

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    pub ttl: Duration,
}

impl JwtKeys {
    pub fn new(secret: &[u8], ttl: Duration, issuer: &str) -> Self {
        // Pinned: a token naming any other algorithm (`none`, RS256...) is refused.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[AUDIENCE]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: issuer.to_owned(),
            ttl,
        }
    }

    /// `WAGW_JWT_SECRET`, or in sandbox mode a secret generated once and shared by every
    /// replica through `gateway_settings`.
    pub async fn load(
        pool: &Db,
        configured: Option<&secrecy::SecretString>,
        ttl: Duration,
        issuer: &str,
    ) -> anyhow::Result<Self> {
        if let Some(secret) = configured {
            return Ok(Self::new(secret.expose_secret().as_bytes(), ttl, issuer));
        }
        let fresh = hex::encode(rand::random::<[u8; 32]>());
        sqlx::query!(
            "INSERT INTO gateway_settings (name, value) VALUES ('jwt_secret', $1)
             ON CONFLICT (name) DO NOTHING",
            fresh
        )
        .execute(pool)
        .await?;
        let secret =
            sqlx::query_scalar!("SELECT value FROM gateway_settings WHERE name = 'jwt_secret'")
                .fetch_one(pool)
                .await?;
        Ok(Self::new(secret.as_bytes(), ttl, issuer))
    }

    /// A token for `admin` at its current `token_version`.
    pub fn issue(&self, admin: Uuid, token_version: i32) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: admin,
            iat: now,
            exp: now + self.ttl.as_secs() as i64,
            jti: Uuid::new_v4(),
            iss: self.issuer.clone(),
            aud: AUDIENCE.to_owned(),
            ver: token_version,
        };
        Ok(encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    pub fn verify(&self, token: &str) -> Option<Claims> {
        decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|d| d.claims)
    }
}
