//! Admin access tokens: HS256 only, short-lived, with `sub`, `iat`, `exp` and `jti`.

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
}

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub ttl: Duration,
}

impl JwtKeys {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        // Pinned: a token naming any other algorithm (`none`, RS256...) is refused.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    /// `WAGW_JWT_SECRET`, or in sandbox mode a secret generated once and shared by every
    /// replica through `gateway_settings`.
    pub async fn load(
        pool: &Db,
        configured: Option<&secrecy::SecretString>,
        ttl: Duration,
    ) -> anyhow::Result<Self> {
        if let Some(secret) = configured {
            return Ok(Self::new(secret.expose_secret().as_bytes(), ttl));
        }
        let fresh = hex::encode(rand::random::<[u8; 32]>());
        sqlx::query(
            "INSERT INTO gateway_settings (name, value) VALUES ('jwt_secret', $1) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&fresh)
        .execute(pool)
        .await?;
        let secret: String =
            sqlx::query_scalar("SELECT value FROM gateway_settings WHERE name = 'jwt_secret'")
                .fetch_one(pool)
                .await?;
        Ok(Self::new(secret.as_bytes(), ttl))
    }

    pub fn issue(&self, admin: Uuid) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: admin,
            iat: now,
            exp: now + self.ttl.as_secs() as i64,
            jti: Uuid::new_v4(),
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
