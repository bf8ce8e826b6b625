//! Refresh tokens.
//!
//! A refresh token is 256 random bits, sent to the client once (in a cookie scoped to
//! `/api/v1/auth`) and stored only as its SHA-256: a database leak yields nothing usable.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Absolute lifetime of a session: after this, the user logs in again.
pub const SESSION_TTL_DAYS: i64 = 30;

/// 256 random bits, URL-safe base64 (43 characters).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the database stores for a refresh token.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_256_bits_and_differ() {
        let a = random_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).expect("base64").len(), 32);
        assert_ne!(a, random_token());
        assert_eq!(token_hash(&a).len(), 32);
    }
}
