//! Password hashing: argon2id with OWASP's recommended parameters (19 MiB, 2 passes, 1 lane),
//! on the blocking pool so a hash never stalls the async workers, and never more at once than
//! [`Hashing`] has permits.
//!
//! Each hash holds 19 MiB for its whole run, so hashes running together are what bounds the
//! api's memory under a burst of registrations or logins. A request that finds every permit
//! taken is answered 503 with `Retry-After` at once rather than queued: a queue without bound
//! is memory without bound, and a client retrying after a second costs nothing meanwhile.

use crate::error::ApiError;
use anyhow::{Context, anyhow};
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use common::config::{ExposeSecret, SecretString};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// OWASP Password Storage Cheat Sheet: argon2id, m=19456 KiB, t=2, p=1.
const M_COST_KIB: u32 = common::config::HASH_MEMORY_KIB;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

/// What a client told to come back is told to wait: a hash takes tens of milliseconds.
pub const BUSY_RETRY_AFTER_SECS: u64 = 1;

fn argon2() -> anyhow::Result<Argon2<'static>> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None)
        .map_err(|e| anyhow!("argon2 parameters: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Why a hash was not computed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every permit is taken: 503 with `Retry-After`.
    #[error("every password hashing slot is busy")]
    Busy,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<HashError> for ApiError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => ApiError::Busy {
                retry_after_secs: BUSY_RETRY_AFTER_SECS,
            },
            HashError::Failed(e) => ApiError::Internal(e),
        }
    }
}

/// The api's password hashing: a fixed number of hashes at a time, and the dummy hash that
/// login verifies for unknown emails.
#[derive(Clone)]
pub struct Hashing {
    permits: Arc<Semaphore>,
    dummy: Arc<str>,
}

impl Hashing {
    /// Allows `concurrency` hashes at once (at least one), and computes the dummy hash now so
    /// the first failed login with an unknown email is not faster than the others.
    pub async fn start(concurrency: usize) -> anyhow::Result<Self> {
        let mut hashing = Hashing {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy: Arc::from(""),
        };
        let random = crate::auth::session::random_token();
        hashing.dummy = Arc::from(hashing.hash(SecretString::from(random)).await?);
        Ok(hashing)
    }

    /// A hashing slot, if one is free. Held until the hash it is taken for has finished on
    /// the blocking pool, even if the request that asked for it went away meanwhile.
    pub fn permit(&self) -> Result<OwnedSemaphorePermit, HashError> {
        self.permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| HashError::Busy)
    }

    /// Hashes `password` into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) with a fresh
    /// salt.
    pub async fn hash(&self, password: SecretString) -> Result<String, HashError> {
        let permit = self.permit()?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            argon2()?
                .hash_password(password.expose_secret().as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| anyhow!("hashing a password: {e}"))
        })
        .await
        .context("password hashing task")?
        .map_err(HashError::Failed)
    }

    /// Whether `password` matches `hash`. A hash that cannot be parsed matches nothing.
    pub async fn verify(&self, password: SecretString, hash: String) -> Result<bool, HashError> {
        let permit = self.permit()?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            Ok(argon2()?
                .verify_password(password.expose_secret().as_bytes(), hash.as_str())
                .is_ok())
        })
        .await
        .context("password verification task")?
        .map_err(HashError::Failed)
    }

    /// A hash of a random password with the same parameters as real ones. Login verifies
    /// against it when the email is unknown, so unknown and known emails cost the same time.
    pub fn dummy_hash(&self) -> String {
        self.dummy.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_uses_owasp_parameters_and_verifies_only_its_password() {
        let hashing = Hashing::start(1).await.expect("start");
        let h = hashing
            .hash(SecretString::from("correct horse"))
            .await
            .expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(
            hashing
                .verify(SecretString::from("correct horse"), h.clone())
                .await
                .expect("verify")
        );
        assert!(
            !hashing
                .verify(SecretString::from("wrong horse"), h)
                .await
                .expect("verify")
        );
        assert!(
            !hashing
                .verify(SecretString::from("x"), "not-a-hash".into())
                .await
                .expect("verify")
        );
    }

    #[tokio::test]
    async fn a_hash_past_the_bound_is_refused_at_once_and_the_slot_comes_back() {
        let hashing = Hashing::start(1).await.expect("start");
        let held = hashing.permit().expect("a free slot");
        assert!(matches!(
            hashing.hash(SecretString::from("correct horse")).await,
            Err(HashError::Busy)
        ));
        assert!(matches!(
            hashing
                .verify(SecretString::from("correct horse"), hashing.dummy_hash())
                .await,
            Err(HashError::Busy)
        ));
        drop(held);
        assert!(
            hashing
                .hash(SecretString::from("correct horse"))
                .await
                .is_ok()
        );
    }
}
