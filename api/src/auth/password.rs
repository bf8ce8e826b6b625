//! Password hashing: argon2id with OWASP's recommended parameters (19 MiB, 2 passes, 1 lane),
//! always on the blocking pool so a hash never stalls the async workers.

use anyhow::{Context, anyhow};
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use common::config::Secret;
use tokio::sync::OnceCell;

/// OWASP Password Storage Cheat Sheet: argon2id, m=19456 KiB, t=2, p=1.
const M_COST_KIB: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

fn argon2() -> anyhow::Result<Argon2<'static>> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None)
        .map_err(|e| anyhow!("argon2 parameters: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes `password` into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) with a fresh salt.
pub async fn hash(password: Secret) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        argon2()?
            .hash_password(password.expose().as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| anyhow!("hashing a password: {e}"))
    })
    .await
    .context("password hashing task")?
}

/// Whether `password` matches `hash`. A hash that cannot be parsed matches nothing.
pub async fn verify(password: Secret, hash: String) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        Ok(argon2()?
            .verify_password(password.expose().as_bytes(), hash.as_str())
            .is_ok())
    })
    .await
    .context("password verification task")?
}

static DUMMY_HASH: OnceCell<String> = OnceCell::const_new();

/// A hash of a random password with the same parameters as real ones. Login verifies against
/// it when the email is unknown, so unknown and known emails cost the same time.
pub async fn dummy_hash() -> anyhow::Result<String> {
    DUMMY_HASH
        .get_or_try_init(|| async {
            let random = crate::auth::session::random_token();
            hash(Secret::new(random)).await
        })
        .await
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_uses_owasp_parameters_and_verifies_only_its_password() {
        let h = hash(Secret::new("correct horse")).await.expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(
            verify(Secret::new("correct horse"), h.clone())
                .await
                .expect("verify")
        );
        assert!(!verify(Secret::new("wrong horse"), h).await.expect("verify"));
        assert!(
            !verify(Secret::new("x"), "not-a-hash".into())
                .await
                .expect("verify")
        );
    }
}
