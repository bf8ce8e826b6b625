//! The bounded texts of the bus contract and the HTTP api: why something was asked for
//! ([`Reason`]), who asked ([`Actor`]), and an outside system's own id of what it reports
//! ([`Reference`]). Each is checked once, by its constructor: an HTTP body's validator and a
//! message's decoding (serde `try_from`) both go through it, so past the edge a value is
//! trimmed and within its bounds, and nothing checks it again. JSON carries the bare string.

use super::bounds::{MAX_ACTOR_CHARS, MAX_REASON_CHARS, MAX_REFERENCE_CHARS};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// Declares a text newtype: trimmed, 1 to `$max` characters.
macro_rules! bounded_text {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The most characters it holds, once trimmed.
            pub const MAX_CHARS: usize = $max;

            /// `raw` trimmed, if that is 1 to [`Self::MAX_CHARS`] characters; otherwise why not.
            pub fn new(raw: impl AsRef<str>) -> Result<Self, String> {
                let text = raw.as_ref().trim();
                let chars = text.chars().count();
                if chars == 0 || chars > $max {
                    Err(format!("must be 1 to {} characters", $max))
                } else {
                    Ok($name(text.to_owned()))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(raw: String) -> Result<Self, Self::Error> {
                $name::new(raw)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = String;
            fn try_from(raw: &str) -> Result<Self, Self::Error> {
                $name::new(raw)
            }
        }

        impl From<$name> for String {
            fn from(text: $name) -> String {
                text.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

bounded_text!(
    /// Why something was asked for or happened (a transition, a refund, a return, a stock
    /// adjustment, a provider's explanation of a failure): 1 to [`MAX_REASON_CHARS`]
    /// characters, trimmed. One bound on the bus and in HTTP.
    Reason,
    MAX_REASON_CHARS
);

bounded_text!(
    /// Who asks (`user:<id>`, `system:expiry`): 1 to [`MAX_ACTOR_CHARS`] characters, trimmed.
    Actor,
    MAX_ACTOR_CHARS
);

bounded_text!(
    /// A publisher's own id of what it reports or refers to (a payment's or a refund's
    /// provider reference, a warehouse's shipment, a stock receipt): 1 to
    /// [`MAX_REFERENCE_CHARS`] characters, trimmed.
    Reference,
    MAX_REFERENCE_CHARS
);

impl Actor {
    /// A user of the api, `user:<id>` (always within the bounds).
    pub fn user(id: uuid::Uuid) -> Self {
        Actor(format!("user:{id}"))
    }
}

/// For an optional text of a message (`#[serde(default, deserialize_with =
/// "blank_is_absent")]`): absent, `null` and a blank string are `None`; any other string
/// must pass the type's check.
pub fn blank_is_absent<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<String, Error = String>,
{
    match Option::<String>::deserialize(deserializer)? {
        Some(raw) if !raw.trim().is_empty() => {
            T::try_from(raw).map(Some).map_err(serde::de::Error::custom)
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_trimmed_and_one_to_the_maximum_characters() {
        assert_eq!(Reason::new("  damaged  ").expect("valid"), "damaged");
        let longest = "é".repeat(MAX_REASON_CHARS);
        assert_eq!(Reason::new(&longest).map(String::from), Ok(longest.clone()));
        let padded = format!(" {longest} ");
        assert_eq!(Reason::new(&padded).map(String::from), Ok(longest));
        let rule = Err(format!("must be 1 to {MAX_REASON_CHARS} characters"));
        assert_eq!(Reason::new("r".repeat(MAX_REASON_CHARS + 1)), rule);
        assert_eq!(Reason::new(""), rule);
        assert_eq!(Reason::new(" \n\t "), rule);
        assert_eq!(Reason::new("r"), Reason::new("r"));
    }

    #[test]
    fn an_actor_and_a_reference_are_bounded_the_same_way() {
        assert_eq!(MAX_ACTOR_CHARS, 200);
        assert_eq!(MAX_REFERENCE_CHARS, 200);
        assert!(Actor::new("a".repeat(MAX_ACTOR_CHARS)).is_ok());
        assert_eq!(
            Actor::new("a".repeat(MAX_ACTOR_CHARS + 1)),
            Err(format!("must be 1 to {MAX_ACTOR_CHARS} characters"))
        );
        assert!(Actor::new(" ").is_err());
        let id = uuid::Uuid::max();
        assert_eq!(
            Actor::user(id),
            Actor::new(format!("user:{id}")).expect("valid")
        );
        assert_eq!(Reference::new(" wms-1 ").expect("valid"), "wms-1");
        assert!(Reference::new("r".repeat(MAX_REFERENCE_CHARS)).is_ok());
        assert_eq!(
            Reference::new("r".repeat(MAX_REFERENCE_CHARS + 1)),
            Err(format!("must be 1 to {MAX_REFERENCE_CHARS} characters"))
        );
        assert!(Reference::new("").is_err());
    }

    #[test]
    fn json_carries_the_bare_string_and_refuses_a_bad_one_naming_the_rule() {
        let reason: Reason = serde_json::from_str("\" out of stock \"").expect("valid");
        assert_eq!(reason, "out of stock");
        assert_eq!(
            serde_json::to_string(&reason).expect("encodes"),
            "\"out of stock\""
        );
        let back: Reason = serde_json::from_str(&serde_json::to_string(&reason).expect("encodes"))
            .expect("decodes");
        assert_eq!(back, reason);
        let long = serde_json::to_string(&"r".repeat(MAX_REASON_CHARS + 1)).expect("encodes");
        let refused = serde_json::from_str::<Reason>(&long).expect_err("too long");
        assert!(
            refused
                .to_string()
                .starts_with(&format!("must be 1 to {MAX_REASON_CHARS} characters")),
            "{refused}"
        );
        assert!(serde_json::from_str::<Reference>("\"\"").is_err());
        assert!(serde_json::from_str::<Actor>("\"   \"").is_err());
        assert!(serde_json::from_str::<Actor>("17").is_err());
    }

    #[test]
    fn an_optional_text_is_absent_when_blank_and_checked_otherwise() {
        #[derive(Debug, Deserialize)]
        struct Failed {
            #[serde(default, deserialize_with = "blank_is_absent")]
            reason: Option<Reason>,
        }
        let read = |json: serde_json::Value| serde_json::from_value::<Failed>(json);
        assert_eq!(read(serde_json::json!({})).expect("absent").reason, None);
        let null = read(serde_json::json!({"reason": null})).expect("null");
        assert_eq!(null.reason, None);
        let blank = read(serde_json::json!({"reason": "  "})).expect("blank");
        assert_eq!(blank.reason, None);
        let given = read(serde_json::json!({"reason": " declined "})).expect("given");
        assert_eq!(given.reason.expect("a reason"), "declined");
        let long = read(serde_json::json!({"reason": "r".repeat(MAX_REASON_CHARS + 1)}));
        let refused = long.expect_err("too long").to_string();
        assert!(refused.contains("must be 1 to 500 characters"), "{refused}");
    }
}
