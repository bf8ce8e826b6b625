//! Where PostgreSQL is and who this process is there: `DATABASE_URL` (the runtime role, which
//! reads and writes data), `DATABASE_MIGRATE_URL` (the schema owner, used only by `api
//! migrate`) and `MIGRATE_ON_START` (whether the api and workers apply migrations themselves).

use super::{ConfigError, SecretString, parse::parse_bool};

/// The runtime URL, the schema owner's URL if given, and whether to migrate at start.
pub(super) type Database = (SecretString, Option<SecretString>, bool);

pub(super) fn urls_and_migration(
    var: &impl Fn(&str) -> Option<String>,
) -> Result<Database, ConfigError> {
    let url = var("DATABASE_URL").ok_or_else(|| {
        ConfigError::new("DATABASE_URL", "required, e.g. postgres://user@host/db")
    })?;
    check_url("DATABASE_URL", &url)?;
    let migrate_url = var("DATABASE_MIGRATE_URL");
    if let Some(migrate_url) = &migrate_url {
        check_url("DATABASE_MIGRATE_URL", migrate_url)?;
    }
    // A deployment with a schema owner of its own runs `api migrate` as that owner; the
    // runtime role cannot change the schema, so the processes only check it.
    let migrate_on_start = parse_bool(var, "MIGRATE_ON_START", migrate_url.is_none())?;
    Ok((
        SecretString::from(url),
        migrate_url.map(SecretString::from),
        migrate_on_start,
    ))
}

/// A `postgres://` URL. The message never repeats the URL: it may hold a password.
fn check_url(name: &'static str, url: &str) -> Result<(), ConfigError> {
    let parsed = url::Url::parse(url)
        .map_err(|e| ConfigError::new(name, format!("not a valid URL ({e})")))?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return Err(ConfigError::new(
            name,
            format!(
                "scheme must be postgres:// or postgresql://, not {}://",
                parsed.scheme()
            ),
        ));
    }
    Ok(())
}
