//! Request bodies of the auth routes. Unknown fields are refused (`deny_unknown_fields`), so
//! a `role` sent to registration is an error, not silently ignored. These types deliberately do
//! not implement `Debug`: they hold passwords.

use serde::Deserialize;
use utoipa::ToSchema;

/// A new account; it is always a CLIENT.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[schema(example = "ann@example.com", max_length = 254)]
    pub email: String,
    /// 8 to 128 characters, not the email address.
    #[schema(
        example = "correct horse battery staple",
        min_length = 8,
        max_length = 128
    )]
    pub password: String,
    #[serde(default)]
    #[schema(example = "Ann Lee", max_length = 200)]
    pub name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(example = "ann@example.com")]
    pub email: String,
    #[schema(example = "correct horse battery staple")]
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    /// 8 to 128 characters, not the email address, not the current password.
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
}
