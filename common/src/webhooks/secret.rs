//! Signing secrets: made here (`whsec_` and the base64 of 32 random bytes, as Standard
//! Webhooks serialises them), shown once, and stored only encrypted with the deployment's
//! `WEBHOOK_ENCRYPTION_KEY` (XChaCha20-Poly1305, the endpoint's id as associated data), so a
//! database dump alone can sign nothing, and a secret copied to another endpoint's row does
//! not decrypt.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

/// The serialised form's prefix.
const PREFIX: &str = "whsec_";
/// Random bytes of a new secret (the specification asks for 24 to 64).
const SECRET_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;

/// A signing secret as the receiver holds it: `whsec_<base64>`. Never shown in `Debug`.
#[derive(Debug, Clone)]
pub struct SigningSecret(SecretString);

impl SigningSecret {
    /// A new random secret.
    pub fn generate() -> Self {
        let mut bytes = [0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        SigningSecret(SecretString::from(format!(
            "{PREFIX}{}",
            STANDARD.encode(bytes)
        )))
    }

    /// A secret in its serialised form (`whsec_` optional, as receivers' libraries accept).
    pub fn parse(serialised: &str) -> Result<Self, SecretError> {
        let secret = SigningSecret(SecretString::from(serialised.to_owned()));
        secret.key()?;
        Ok(secret)
    }

    /// `whsec_…`, to show once.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The HMAC key: the base64-decoded part.
    pub fn key(&self) -> Result<Vec<u8>, SecretError> {
        let encoded = self.expose();
        let encoded = encoded.strip_prefix(PREFIX).unwrap_or(encoded);
        match STANDARD.decode(encoded) {
            Ok(key) if !key.is_empty() => Ok(key),
            _ => Err(SecretError::Malformed),
        }
    }
}

/// Why a stored secret cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the signing secret is malformed")]
    Malformed,
    #[error(
        "the signing secret does not decrypt with WEBHOOK_ENCRYPTION_KEY (another key, or another endpoint's secret)"
    )]
    Undecryptable,
}

/// Encrypts and decrypts signing secrets with the deployment's key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    /// The box of `key` (`WEBHOOK_ENCRYPTION_KEY`: base64 of 32 bytes, checked by the
    /// configuration).
    pub fn new(key: &SecretString) -> Result<Self, SecretError> {
        let bytes = STANDARD
            .decode(key.expose_secret())
            .map_err(|_| SecretError::Malformed)?;
        let cipher =
            XChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| SecretError::Malformed)?;
        Ok(SecretBox { cipher })
    }

    /// `secret` sealed for endpoint `endpoint`: a random nonce, then the ciphertext.
    pub fn seal(&self, endpoint: Uuid, secret: &SigningSecret) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: secret.expose().as_bytes(),
            aad: endpoint.as_bytes(),
        };
        // Encryption fails only for messages of gigabytes.
        let sealed = self
            .cipher
            .encrypt(&XNonce::from(nonce), payload)
            .unwrap_or_default();
        [nonce.as_slice(), &sealed].concat()
    }

    /// The secret `sealed` for endpoint `endpoint`.
    pub fn open(&self, endpoint: Uuid, sealed: &[u8]) -> Result<SigningSecret, SecretError> {
        if sealed.len() <= NONCE_BYTES {
            return Err(SecretError::Undecryptable);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let nonce = XNonce::try_from(nonce).map_err(|_| SecretError::Undecryptable)?;
        let plain = self
            .cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: endpoint.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Undecryptable)?;
        let text = String::from_utf8(plain).map_err(|_| SecretError::Malformed)?;
        SigningSecret::parse(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretBox {
        SecretBox::new(&SecretString::from(STANDARD.encode([byte; 32]))).expect("a key")
    }

    #[test]
    fn a_new_secret_is_whsec_and_32_random_bytes() {
        let (a, b) = (SigningSecret::generate(), SigningSecret::generate());
        assert!(a.expose().starts_with("whsec_"));
        assert_eq!(a.key().expect("decodes").len(), 32);
        assert_ne!(a.expose(), b.expose());
        assert!(!format!("{a:?}").contains(a.expose()), "redacted in Debug");
    }

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_for_its_endpoint() {
        let secret = SigningSecret::generate();
        let (endpoint, other) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let sealed = key(1).seal(endpoint, &secret);
        assert!(!sealed.windows(6).any(|w| w == b"whsec_"), "no plain text");
        let opened = key(1).open(endpoint, &sealed).expect("opens");
        assert_eq!(opened.expose(), secret.expose());
        assert!(key(2).open(endpoint, &sealed).is_err(), "another key");
        assert!(key(1).open(other, &sealed).is_err(), "another endpoint");
        assert!(key(1).open(endpoint, &sealed[..10]).is_err(), "truncated");
    }
}
