//! `scripts/vendored-advisories`: the crates `vendor/` holds are path dependencies, which
//! `cargo deny check advisories` does not look up; the script checks the upstream releases they
//! copy instead, and fails when one has an advisory. Run against a local advisory database
//! (the real one is fetched from GitHub, out of reach of the test suite).

#![allow(clippy::unwrap_used)] // tests fail loudly on a broken set-up

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The advisory database's URL in the test's policy; nothing is fetched from it.
const DB_URL: &str = "https://advisories.invalid/advisory-db";
/// Where cargo deny keeps the database of [`DB_URL`] inside its `db-path`: the last segment of
/// the URL and a hash of it.
const DB_DIR: &str = "advisory-db-f1d925a66c7726fe";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(["-c", "user.name=test", "-c", "user.email=test@example.com"])
        .args(args)
        .current_dir(dir)
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?}");
}

/// A policy whose advisory database holds one advisory against `krate`, fixed in the versions
/// `patched` names; returns the policy file.
fn policy_with_advisory(scratch: &Path, krate: &str, patched: &str) -> PathBuf {
    let db = scratch.join("dbs").join(DB_DIR);
    let advisories = db.join("crates").join(krate);
    std::fs::create_dir_all(&advisories).unwrap();
    std::fs::write(
        advisories.join("RUSTSEC-2099-0001.md"),
        format!(
            "```toml\n[advisory]\nid = \"RUSTSEC-2099-0001\"\npackage = \"{krate}\"\n\
             date = \"2099-01-01\"\n\n[versions]\npatched = [\"{patched}\"]\n```\n\n\
             # A vulnerability made up for the test\n\nNot a real one.\n"
        ),
    )
    .unwrap();
    git(&db, &["init", "-q"]);
    git(&db, &["add", "-A"]);
    git(&db, &["commit", "-qm", "advisories"]);
    let policy = scratch.join("deny.toml");
    std::fs::write(
        &policy,
        format!(
            "[advisories]\ndb-urls = [\"{DB_URL}\"]\ndb-path = \"{}\"\nyanked = \"deny\"\n",
            scratch.join("dbs").display()
        ),
    )
    .unwrap();
    policy
}

fn check(policy: &Path) -> Output {
    Command::new(root().join("scripts/vendored-advisories"))
        .args(["--offline", "--config"])
        .arg(policy)
        .current_dir(root())
        .output()
        .expect("scripts/vendored-advisories runs")
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vendored-advisories-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn an_advisory_against_the_upstream_release_of_a_vendored_crate_fails_the_check() {
    let scratch = scratch();
    let policy = policy_with_advisory(&scratch, "sqlx-core", ">= 999.0.0");

    let out = check(&policy);

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "passed:\n{stderr}");
    assert!(stderr.contains("RUSTSEC-2099-0001"), "{stderr}");
    assert!(stderr.contains("sqlx-core"), "{stderr}");
    std::fs::remove_dir_all(scratch).ok();
}

#[test]
fn the_check_passes_when_no_advisory_concerns_the_vendored_releases() {
    let scratch = scratch();
    // An advisory about sqlx-core fixed in every release, and so in the copied one.
    let policy = policy_with_advisory(&scratch, "sqlx-core", ">= 0.0.0");

    let out = check(&policy);

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "failed:\n{stderr}");
    // The exact release the copy declares.
    assert!(stderr.contains("sqlx-core = { version = \"="), "{stderr}");
    std::fs::remove_dir_all(scratch).ok();
}
