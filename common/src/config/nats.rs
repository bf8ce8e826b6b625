//! Where NATS is and who this process is there: `NATS_URL` (credentials in it are taken out,
//! so the URL can be logged), `NATS_USER`/`NATS_PASSWORD` and `NATS_NAMESPACE`.

use super::{ConfigError, ExposeSecret, SecretString, limits};

/// The servers (comma separated, without credentials), the credentials, and the namespace.
pub(super) type Nats = (String, Option<(String, SecretString)>, String);

pub(super) fn servers_and_credentials(
    var: &impl Fn(&str) -> Option<String>,
) -> Result<Nats, ConfigError> {
    let raw_nats_url = var("NATS_URL").unwrap_or_else(|| "nats://127.0.0.1:4222".into());
    let mut servers = Vec::new();
    let mut url_credentials = None;
    for server in raw_nats_url.split(',') {
        let server = server.trim();
        let with_scheme = if server.contains("://") {
            server.to_owned()
        } else {
            format!("nats://{server}")
        };
        // The message names the server only by position: it may hold a password.
        let position = servers.len() + 1;
        let mut url = url::Url::parse(&with_scheme).map_err(|e| {
            ConfigError::new(
                "NATS_URL",
                format!("server {position} is not a valid URL ({e})"),
            )
        })?;
        if url.host_str().is_none() {
            return Err(ConfigError::new(
                "NATS_URL",
                format!("server {position} has no host"),
            ));
        }
        if !url.username().is_empty() {
            let user = percent_decode(url.username());
            let password = percent_decode(url.password().unwrap_or_default());
            url_credentials.get_or_insert((user, SecretString::from(password)));
            let _ = url.set_username("");
            let _ = url.set_password(None);
        }
        servers.push(url.as_str().trim_end_matches('/').to_owned());
    }
    let nats_url = servers.join(",");
    // A placeholder of the example files is refused, never used (as the JWT key is).
    if url_credentials
        .as_ref()
        .is_some_and(|(_, password)| limits::is_placeholder(password.expose_secret()))
    {
        return Err(ConfigError::new(
            "NATS_URL",
            "holds a change-me placeholder password; set the user's real password",
        ));
    }
    let nats_credentials = match (var("NATS_USER"), var("NATS_PASSWORD")) {
        (Some(_), Some(password)) if limits::is_placeholder(&password) => {
            return Err(ConfigError::new(
                "NATS_PASSWORD",
                "is a change-me placeholder of the example files; set the user's real password",
            ));
        }
        (Some(user), Some(password)) => Some((user, SecretString::from(password))),
        (Some(_), None) => {
            return Err(ConfigError::new(
                "NATS_PASSWORD",
                "required when NATS_USER is set",
            ));
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                "NATS_USER",
                "required when NATS_PASSWORD is set",
            ));
        }
        (None, None) => url_credentials,
    };

    let nats_namespace = var("NATS_NAMESPACE").unwrap_or_default();
    if !nats_namespace
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ConfigError::new(
            "NATS_NAMESPACE",
            "may contain only letters, digits, '_' and '-'",
        ));
    }
    Ok((nats_url, nats_credentials, nats_namespace))
}

/// Decodes `%XX` escapes of URL user info (a password may contain `@` or `:`).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
