//! Standard Webhooks signatures: `v1,<base64 of HMAC-SHA256 over "{id}.{timestamp}.{body}">`,
//! one per live secret, space separated (the new secret's first while a rotated one still
//! signs).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The `webhook-signature` value of one attempt, signed with each of `keys` (HMAC keys, the
/// decoded part of `whsec_…`).
pub fn signature(keys: &[Vec<u8>], id: &str, timestamp: i64, body: &str) -> String {
    keys.iter()
        .map(|key| sign(key, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

fn sign(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    // HMAC takes a key of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::webhooks::SigningSecret;

    fn key(secret: &str) -> Vec<u8> {
        SigningSecret::parse(secret)
            .expect("a secret")
            .key()
            .expect("a key")
    }

    /// The test vectors of the Standard Webhooks reference libraries (Go, Python, Rust, …).
    #[test]
    fn the_specifications_test_vectors_are_reproduced() {
        assert_eq!(
            signature(
                &[key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")],
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                r#"{"test": 2432232314}"#,
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert_eq!(
            signature(
                &[key("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")],
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1_649_367_553,
                r#"{"email":"test@example.com","username":"test_user"}"#,
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn two_live_secrets_give_two_space_separated_signatures() {
        let (new, old) = (
            key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            key("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
        );
        let both = signature(&[new.clone(), old.clone()], "msg_1", 1, "{}");
        let parts: Vec<&str> = both.split(' ').collect();
        assert_eq!(
            parts,
            [
                signature(&[new], "msg_1", 1, "{}"),
                signature(&[old], "msg_1", 1, "{}")
            ]
        );
    }

    /// The reference Rust implementation, from crates.io, verifies what this module signs.
    #[test]
    fn the_reference_implementation_verifies_these_signatures() {
        let secret = SigningSecret::generate();
        let reference = standardwebhooks::Webhook::new(secret.expose())
            .expect("the reference reads the secret");
        let now = chrono::Utc::now().timestamp();
        let body =
            r#"{"type":"order.status_changed","timestamp":"2024-05-01T10:00:00Z","data":{}}"#;
        let mut headers = http::HeaderMap::new();
        headers.insert("webhook-id", "msg_abc".parse().expect("header"));
        headers.insert(
            "webhook-timestamp",
            now.to_string().parse().expect("header"),
        );
        let other = SigningSecret::generate().key().expect("key");
        let value = signature(&[other, secret.key().expect("key")], "msg_abc", now, body);
        headers.insert("webhook-signature", value.parse().expect("header"));
        reference
            .verify(body.as_bytes(), &headers)
            .expect("verified by the reference");
        assert_eq!(
            reference
                .sign("msg_abc", now, body.as_bytes())
                .expect("signs"),
            signature(&[secret.key().expect("key")], "msg_abc", now, body)
        );
    }
}
