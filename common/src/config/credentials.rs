//! Keys and passwords read at start-up: the token-signing keys and the start-up ADMIN. A
//! placeholder copied from `.env.example` is refused, never used.

use super::{AdminSeed, ConfigError, SecretString, limits};

/// Shortest token-signing key accepted.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// An HMAC key for access tokens: at least [`MIN_JWT_SECRET_BYTES`] bytes, when set.
pub(super) fn parse_jwt_key(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Option<SecretString>, ConfigError> {
    match var(name) {
        Some(s) if s.len() < MIN_JWT_SECRET_BYTES => Err(ConfigError::new(
            name,
            format!(
                "must be at least {MIN_JWT_SECRET_BYTES} bytes, got {}",
                s.len()
            ),
        )),
        Some(s) if limits::is_placeholder(&s) => Err(ConfigError::new(
            name,
            "is the placeholder of .env.example; use a random key, e.g. `openssl rand -base64 48`",
        )),
        key => Ok(key.map(SecretString::from)),
    }
}

/// The ADMIN ensured at start-up: both `ADMIN_EMAIL` and `ADMIN_PASSWORD`, or neither.
pub(super) fn admin_seed(
    var: &impl Fn(&str) -> Option<String>,
) -> Result<Option<AdminSeed>, ConfigError> {
    let admin = match (var("ADMIN_EMAIL"), var("ADMIN_PASSWORD")) {
        (Some(_), Some(password)) if limits::is_placeholder(&password) => {
            return Err(ConfigError::new(
                "ADMIN_PASSWORD",
                "is the placeholder of .env.example; choose the administrator's password",
            ));
        }
        (Some(email), Some(password)) => Some(AdminSeed {
            email,
            password: SecretString::from(password),
        }),
        (Some(_), None) => {
            return Err(ConfigError::new(
                "ADMIN_PASSWORD",
                "required when ADMIN_EMAIL is set",
            ));
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                "ADMIN_EMAIL",
                "required when ADMIN_PASSWORD is set",
            ));
        }
        (None, None) => None,
    };
    Ok(admin)
}
