//! Parsing of account input at the edge: email addresses, display names and the password
//! policy. Everything past these functions works with values known to be valid.

use crate::error::{ApiError, FieldError};

/// Shortest password accepted (NIST SP 800-63B asks for at least 8).
pub const PASSWORD_MIN_CHARS: usize = 8;
/// Longest password accepted; long passphrases are welcome, unbounded input is not.
pub const PASSWORD_MAX_CHARS: usize = 128;
pub const NAME_MAX_CHARS: usize = 200;
/// Longest email address (RFC 5321's path limit less its angle brackets), in bytes.
pub const EMAIL_MAX_LEN: usize = 254;

/// Refuses an `email` longer than any address can be (422 naming the field), before it is
/// lower-cased, looked up, or used as a rate-limit key.
pub fn check_email_length(raw: &str) -> Result<(), ApiError> {
    if raw.trim().len() > EMAIL_MAX_LEN {
        return Err(ApiError::field(
            "email",
            format!("must be at most {EMAIL_MAX_LEN} bytes"),
        ));
    }
    Ok(())
}

/// An email address, trimmed and lower-cased, so uniqueness is case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Normalises and checks the shape of an address (`local@domain.tld`, no spaces).
    pub fn parse(raw: &str) -> Result<Email, String> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err("must not be empty".into());
        }
        if email.len() > EMAIL_MAX_LEN {
            return Err(format!("must be at most {EMAIL_MAX_LEN} characters"));
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err("must be an email address".into());
        };
        let well_formed = !local.is_empty()
            && !domain.is_empty()
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if !well_formed {
            return Err("must be an email address".into());
        }
        Ok(Email(email))
    }

    /// Normalises without checking the shape: login looks addresses up as typed, so a
    /// malformed one simply matches no account (and gets the same answer as a wrong password).
    pub fn normalise(raw: &str) -> String {
        raw.trim().to_lowercase()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn local_part(&self) -> &str {
        self.0.split_once('@').map(|(l, _)| l).unwrap_or(&self.0)
    }
}

/// A display name: trimmed, blank means none.
pub fn parse_name(raw: Option<&str>) -> Result<Option<String>, String> {
    let Some(name) = raw.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if name.chars().count() > NAME_MAX_CHARS {
        return Err(format!("must be at most {NAME_MAX_CHARS} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(Some(name.to_owned()))
}

/// The password policy: length bounds, and not the account's own email address.
/// `field` names the request field in the error.
pub fn check_password(
    field: &str,
    password: &str,
    email: Option<&Email>,
) -> Result<(), FieldError> {
    let chars = password.chars().count();
    let problem = if chars < PASSWORD_MIN_CHARS {
        Some(format!("must be at least {PASSWORD_MIN_CHARS} characters"))
    } else if chars > PASSWORD_MAX_CHARS {
        Some(format!("must be at most {PASSWORD_MAX_CHARS} characters"))
    } else if password.trim().is_empty() {
        Some("must not be only spaces".into())
    } else {
        let lowered = password.trim().to_lowercase();
        email
            .filter(|e| lowered == e.as_str() || lowered == e.local_part())
            .map(|_| "must not be your email address".to_owned())
    };
    match problem {
        Some(message) => Err(FieldError::new(field, message)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        let e = Email::parse("  Ann.Lee@Example.COM ").expect("valid");
        assert_eq!(e.as_str(), "ann.lee@example.com");
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "ann",
            "@example.com",
            "ann@",
            "ann@localhost",
            "a b@x.io",
            "a@@x.io",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_password_policy_bounds_length_and_refuses_the_email() {
        let email = Email::parse("ann@example.com").expect("valid");
        assert!(check_password("password", "short", Some(&email)).is_err());
        assert!(check_password("password", &"x".repeat(129), Some(&email)).is_err());
        assert!(check_password("password", "ANN@example.com", Some(&email)).is_err());
        assert!(check_password("password", "annannann", Some(&email)).is_ok());
        assert!(check_password("password", "correct horse battery", Some(&email)).is_ok());
        let err = check_password("new_password", "short", Some(&email)).unwrap_err();
        assert_eq!(err.field, "new_password");
    }

    #[test]
    fn blank_names_mean_none() {
        assert_eq!(parse_name(Some("  ")), Ok(None));
        assert_eq!(parse_name(Some(" Ann ")), Ok(Some("Ann".into())));
        assert!(parse_name(Some(&"n".repeat(201))).is_err());
    }
}
