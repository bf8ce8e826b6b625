//! Access tokens: short-lived HS256 JWTs. Only HS256 is accepted; `alg: none`, other
//! algorithms, tampered signatures, a wrong issuer and expired tokens are all refused.
//!
//! Tokens are signed with the current key (`JWT_SECRET`); the key of the previous rotation
//! (`JWT_PREVIOUS_SECRET`), when set, still verifies the tokens it signed until they expire, so
//! rotating the key logs nobody out.

use chrono::Utc;
use common::config::{ExposeSecret, SecretString};
use common::domain::Role;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const ISSUER: &str = "order-service";
/// Lifetime of an access token.
pub const ACCESS_TOKEN_TTL_SECS: i64 = 15 * 60;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    pub role: Role,
    /// The session (refresh-token family member) this token was issued for.
    pub sid: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
}

/// Signs access tokens with the current key and verifies them with it or the previous one.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// The previous rotation's key: verifies, never signs.
    previous: Option<DecodingKey>,
}

impl TokenKeys {
    pub fn new(secret: &SecretString) -> Self {
        TokenKeys {
            encoding: EncodingKey::from_secret(secret.expose_secret().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose_secret().as_bytes()),
            previous: None,
        }
    }

    /// Also accepts tokens signed with `previous`, the key `JWT_SECRET` held before.
    pub fn with_previous(mut self, previous: Option<&SecretString>) -> Self {
        self.previous =
            previous.map(|key| DecodingKey::from_secret(key.expose_secret().as_bytes()));
        self
    }

    pub fn issue(&self, user_id: Uuid, role: Role, session_id: Uuid) -> anyhow::Result<String> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user_id,
            role,
            sid: session_id,
            iat: now,
            exp: now + ACCESS_TOKEN_TTL_SECS,
            iss: ISSUER.to_owned(),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// The claims of a valid token, or `None` for anything else.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
        validation.leeway = 5;
        std::iter::once(&self.decoding)
            .chain(self.previous.as_ref())
            .find_map(|key| jsonwebtoken::decode::<Claims>(token, key, &validation).ok())
            .map(|data| data.claims)
    }
}
