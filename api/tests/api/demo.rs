//! The demo shop of scripts/dev (scripts/demo.sh): the seed creates a small catalogue and a
//! demo customer once, through the api, and the walk-through it prints works when pasted
//! into a shell, as the README's quick start shows it.

use crate::helpers::{TestApp, spawn_app_with};
use std::path::PathBuf;

const ADMIN: [(&str, &str); 2] = [
    ("ADMIN_EMAIL", "admin@example.com"),
    ("ADMIN_PASSWORD", "admin-password-for-the-demo"),
];

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `script` in bash from the repository root with `scripts/lib.sh` and `scripts/demo.sh`
/// sourced; returns its standard output, failing on a non-zero exit.
async fn bash(script: &str, args: &[&str]) -> String {
    let out = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -euo pipefail; source scripts/lib.sh; source scripts/demo.sh; {script}"
        ))
        .arg("bash")
        .args(args)
        .envs(ADMIN)
        .current_dir(repo_root())
        .output()
        .await
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The commands of a printed walk-through: its lines indented by four spaces.
fn commands(walk_through: &str) -> Vec<String> {
    walk_through
        .lines()
        .filter_map(|l| l.strip_prefix("    "))
        .map(str::to_owned)
        .collect()
}

/// Runs the commands of a printed walk-through in bash, as pasted into a shell of the ADMIN's
/// environment; returns what they printed, failing on a non-zero exit.
async fn run_pasted(printed: &str) -> String {
    let out = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -euo pipefail\n{}",
            commands(printed).join("\n")
        ))
        .envs(ADMIN)
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    said
}

/// Asserts that the README's section `heading` shows every command `printed` holds.
fn assert_readme_shows(heading: &str, printed: &str) {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let section = readme
        .split(heading)
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("the README section");
    let commands = commands(printed);
    assert!(commands.len() > 5, "{printed}");
    for command in commands {
        assert!(
            section.lines().any(|l| l == command),
            "the README's {heading} lacks: {command}"
        );
    }
}

async fn seeded_app() -> TestApp {
    let app = spawn_app_with(&ADMIN).await;
    bash(r#"demo_seed "$1""#, &[&app.address]).await;
    app
}

#[tokio::test]
async fn the_demo_seed_creates_a_catalogue_and_a_customer_once() {
    let app = seeded_app().await;

    bash(r#"demo_seed "$1""#, &[&app.address]).await;

    assert_eq!(app.count("SELECT count(*) FROM products").await, 5);
    assert_eq!(
        app.count(
            "SELECT count(*) FROM users WHERE email = 'demo@example.com' AND role = 'CLIENT'"
        )
        .await,
        1
    );
    // Created through the api: each initial stock is in the product, none by hand.
    assert_eq!(
        app.count("SELECT count(*) FROM products WHERE stock <> initial_stock")
            .await,
        0
    );
}

#[tokio::test]
async fn the_printed_walk_through_places_follows_and_cancels_an_order() {
    let app = seeded_app().await;
    app.start_workers(app.env.config()).await;
    let printed = bash(r#"demo_walkthrough "$1""#, &[&app.address]).await;

    let said = run_pasted(&printed).await;

    let answers: Vec<&str> = said.lines().collect();
    assert_eq!(answers.len(), 4, "login, place, follow, cancel:\n{said}");
    assert!(answers[1].contains(r#""status":"CONFIRMED""#), "{said}");
    assert!(answers[2].contains(r#""timeline""#), "{said}");
    assert!(answers[3].contains(r#""status":"CANCELLED""#), "{said}");
    common::testing::eventually(
        std::time::Duration::from_secs(20),
        "the cancelled kettles back in stock",
        || async {
            let sql = "SELECT stock::int8 FROM products WHERE name = 'Pour-over kettle'";
            (app.count(sql).await == 10).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn the_readme_quick_start_shows_the_walk_through_scripts_dev_prints() {
    let printed = bash(r#"demo_walkthrough "$1""#, &["http://127.0.0.1:8080"]).await;

    assert_readme_shows("## Quick start", &printed);
}

#[tokio::test]
async fn the_printed_after_sale_walk_through_ships_in_two_parcels_and_takes_a_cup_back() {
    let app = seeded_app().await;
    app.start_workers(app.env.config()).await;
    let printed = bash(r#"demo_after_sale "$1""#, &[&app.address]).await;

    let said = run_pasted(&printed).await;

    let answers: Vec<&str> = said.lines().collect();
    assert_eq!(
        answers.len(),
        5,
        "two shipments, two deliveries, a receipt:\n{said}"
    );
    assert!(
        answers[0].contains(r#""status":"PARTIALLY_SHIPPED""#),
        "{said}"
    );
    assert!(answers[1].contains(r#""status":"SHIPPED""#), "{said}");
    assert!(answers[3].contains(r#""status":"DELIVERED""#), "{said}");
    assert!(answers[4].contains(r#""status":"RECEIVED""#), "{said}");
    let sql = "SELECT stock::int8 FROM products WHERE name = 'Espresso cup'";
    assert_eq!(app.count(sql).await, 38, "three sold, one back in stock");
}

#[tokio::test]
async fn the_readme_shows_the_after_sale_walk_through_scripts_dev_prints() {
    let printed = bash(r#"demo_after_sale "$1""#, &["http://127.0.0.1:8080"]).await;

    assert_readme_shows("## After the sale", &printed);
}
