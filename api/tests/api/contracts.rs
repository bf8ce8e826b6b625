//! The published contracts pass the validators integrators use: the api's OpenAPI document
//! (`openapi-spec-validator`, PyPI) and `docs/asyncapi.json` (the AsyncAPI project's parser,
//! `@asyncapi/parser` from npm, locked in docs/validate). scripts/test installs both.

use crate::helpers::spawn_app;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// A JSON document written to a file of its own, removed when dropped.
struct TempJson(PathBuf);

impl TempJson {
    fn new(what: &str, value: &Value) -> Self {
        let path = std::env::temp_dir().join(format!("{what}-{}.json", uuid::Uuid::new_v4()));
        std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
        TempJson(path)
    }
}

impl Drop for TempJson {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs a validator; returns whether it accepted the document, and everything it said.
fn run(program: &str, args: &[&std::ffi::OsStr], install_hint: &str) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs ({e}); {install_hint}"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !said.contains("No module named") && !said.contains("ERR_MODULE_NOT_FOUND"),
        "the validator is missing: {install_hint}\n{said}"
    );
    (out.status.success(), said)
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

fn validate_openapi(file: &Path) -> (bool, String) {
    run(
        &python(),
        &[
            "-m".as_ref(),
            "openapi_spec_validator".as_ref(),
            "--validation-errors".as_ref(),
            "all".as_ref(),
            file.as_os_str(),
        ],
        "run scripts/test, or `python3 -m pip install openapi-spec-validator`",
    )
}

fn validate_asyncapi(file: &Path) -> (bool, String) {
    let script = repo_file("docs/validate/asyncapi.mjs");
    run(
        "node",
        &[script.as_os_str(), file.as_os_str()],
        "run scripts/test, or `npm ci` in docs/validate",
    )
}

async fn served_openapi() -> Value {
    let app = spawn_app().await;
    let res = app.get("/openapi.json").await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

#[tokio::test]
async fn the_served_openapi_document_passes_openapi_spec_validator() {
    let doc = served_openapi().await;
    let file = TempJson::new("openapi", &doc);

    let (valid, said) = validate_openapi(&file.0);

    assert!(valid, "{said}");
    assert!(said.contains(": OK"), "{said}");
}

/// What `api openapi` prints with `COOKIE_SECURE` set to `secure`.
fn printed_openapi(secure: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_api"))
        .arg("openapi")
        .env("COOKIE_SECURE", secure)
        .env_remove("DATABASE_URL")
        .env_remove("JWT_SECRET")
        .output()
        .expect("the api binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the printed document is JSON")
}

#[tokio::test]
async fn api_openapi_prints_the_document_the_api_serves_without_any_other_configuration() {
    // The test apps run with COOKIE_SECURE=false, as a plain-http deployment does.
    let served = served_openapi().await;

    let printed = printed_openapi("false");

    assert!(
        printed["paths"]["/api/v1/orders"]["post"].is_object(),
        "{printed}"
    );
    assert_eq!(printed, served);
}

#[test]
fn api_openapi_names_the_cookies_as_cookie_secure_does() {
    let secure = printed_openapi("true");
    let plain = printed_openapi("false");

    let cookie = |doc: &Value| doc["components"]["securitySchemes"]["cookie"]["name"].clone();
    assert_eq!(cookie(&secure), "__Host-access_token");
    assert_eq!(cookie(&plain), "access_token");
}

#[tokio::test]
async fn openapi_spec_validator_refuses_a_broken_copy_of_the_document() {
    let mut doc = served_openapi().await;
    // An operation whose responses are not an object: the validator must see it.
    let (_, item) = doc["paths"]
        .as_object_mut()
        .unwrap()
        .iter_mut()
        .next()
        .unwrap();
    let operation = item.as_object_mut().unwrap().values_mut().next().unwrap();
    operation["responses"] = Value::String("none".into());
    let file = TempJson::new("openapi-broken", &doc);

    let (valid, said) = validate_openapi(&file.0);

    assert!(!valid, "a broken document passed:\n{said}");
}

#[test]
fn the_committed_asyncapi_document_passes_the_asyncapi_parser() {
    let (valid, said) = validate_asyncapi(&repo_file("docs/asyncapi.json"));

    assert!(valid, "{said}");
    assert!(said.contains("valid AsyncAPI 3."), "{said}");
}

#[test]
fn the_asyncapi_parser_refuses_an_operation_on_an_undefined_channel() {
    let mut doc = common::asyncapi::document();
    let operation = doc["operations"]
        .as_object_mut()
        .unwrap()
        .values_mut()
        .next()
        .unwrap();
    operation["channel"]["$ref"] = Value::String("#/channels/no_such_channel".into());
    let file = TempJson::new("asyncapi-broken", &doc);

    let (valid, said) = validate_asyncapi(&file.0);

    assert!(!valid, "a broken document passed:\n{said}");
    assert!(said.contains("error"), "{said}");
}
