//! The api binary refuses bad configuration with one clear line naming the variable.

#![allow(clippy::unwrap_used)] // tests fail loudly on a broken set-up

use std::process::Command;

fn run_api(vars: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_api"));
    cmd.env_clear().current_dir(std::env::temp_dir());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run api");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const DB: (&str, &str) = (
    "DATABASE_URL",
    "postgres://postgres@127.0.0.1:5432/postgres",
);

#[test]
fn the_placeholder_secret_of_the_example_environment_stops_the_api() {
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.env.example"),
    )
    .unwrap();
    let placeholder = example
        .lines()
        .find_map(|l| l.strip_prefix("JWT_SECRET="))
        .expect(".env.example shows JWT_SECRET");

    let (code, stderr) = run_api(&[DB, ("JWT_SECRET", placeholder)]);

    assert_eq!(code, 2);
    assert!(
        stderr.contains("JWT_SECRET") && stderr.contains("placeholder"),
        "{stderr}"
    );
}

#[test]
fn a_missing_jwt_secret_stops_the_api_naming_the_variable() {
    let (code, stderr) = run_api(&[DB, ("HTTP_ADDR", "127.0.0.1:0")]);
    assert_ne!(code, 0);
    assert!(stderr.contains("JWT_SECRET"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_short_jwt_secret_stops_the_api_with_one_line() {
    let (code, stderr) = run_api(&[DB, ("JWT_SECRET", "too-short")]);
    assert_eq!(code, 2);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("JWT_SECRET") && stderr.contains("32 bytes"),
        "{stderr}"
    );
}

#[test]
fn an_unparsable_database_url_stops_the_api_naming_the_variable() {
    let (code, stderr) = run_api(&[
        ("DATABASE_URL", "::not a url::"),
        ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
    ]);
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with("configuration error: DATABASE_URL"),
        "{stderr}"
    );
}

#[test]
fn a_missing_database_url_stops_the_api_naming_the_variable() {
    let (code, stderr) = run_api(&[("JWT_SECRET", "0123456789abcdef0123456789abcdef")]);
    assert_eq!(code, 2);
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
}
