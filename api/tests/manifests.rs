//! The Kubernetes manifests in deploy/kubernetes validate offline: built-in kinds against the
//! Kubernetes OpenAPI schemas bundled by the `kubernetes-validate` package (installed by
//! scripts/test), KEDA ScaledObjects structurally and against the consumers the workers create;
//! the ConfigMap is a valid configuration with the defaults the deployment needs, and the example
//! Secret's placeholders are refused at start-up.

#![allow(clippy::unwrap_used)] // tests fail loudly on a broken set-up

use std::path::Path;
use std::process::Command;

#[test]
fn the_kubernetes_manifests_validate_against_the_kubernetes_schemas() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes/validate.py");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("{python} runs ({e}); scripts/test sets it up"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !said.contains("No module named"),
        "the validator is missing: run scripts/test, or `{python} -m pip install kubernetes-validate`\n{said}"
    );
    assert!(out.status.success(), "{said}");
    assert!(said.contains(": valid"), "{said}");
}

#[test]
fn the_compose_file_requires_the_secrets_and_publishes_the_api_on_loopback_only() {
    let compose = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker-compose.yml"),
    )
    .unwrap();
    for variable in ["JWT_SECRET", "ADMIN_PASSWORD"] {
        let line = compose
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{variable}:")))
            .unwrap_or_else(|| panic!("{variable} is set in docker-compose.yml"));
        assert!(
            line.contains(&format!("${{{variable}:?")),
            "{variable} must be required, with no default: {line}"
        );
    }
    let published: Vec<&str> = compose
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("- \"") && l.contains(':'))
        .collect();
    assert!(!published.is_empty(), "the api is published");
    for port in published {
        assert!(
            port.starts_with("- \"127.0.0.1:"),
            "published beyond loopback: {port}"
        );
    }
}

/// The `KEY: "value"` entries of a flat YAML mapping block (a ConfigMap's `data`, a Secret's
/// `stringData`) in `file`, from every document.
fn flat_entries(file: &str, block: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(file))
        .unwrap();
    let mut inside = false;
    let mut entries = Vec::new();
    for line in text.lines() {
        if !line.starts_with(' ') {
            inside = line.trim_end() == format!("{block}:");
            continue;
        }
        let entry = line.trim();
        if !inside || entry.starts_with('#') {
            continue;
        }
        if let Some((key, value)) = entry.split_once(": ") {
            entries.push((key.to_owned(), value.trim_matches('"').to_owned()));
        }
    }
    entries
}

#[test]
fn the_configmap_is_a_valid_configuration_with_the_deployment_defaults() {
    let mut vars: std::collections::HashMap<String, String> =
        flat_entries("deploy/kubernetes/config.yaml", "data")
            .into_iter()
            .collect();
    vars.insert(
        "DATABASE_URL".into(),
        "postgres://orders_app@db/orders?sslmode=verify-full".into(),
    );
    let config = common::Config::from_lookup(|k| vars.get(k).cloned()).expect("valid");

    assert!(
        !config.trusted_proxies.is_empty(),
        "the ingress's pods are trusted proxies"
    );
    assert!(
        !config.migrate_on_start,
        "the runtime role migrates nothing"
    );
    assert!(
        config.database_migrate_url.is_none(),
        "no pod but the Job sees the owner"
    );
    assert!(config.http_header_read_timeout > std::time::Duration::from_secs(60));
}

#[test]
fn the_example_secrets_placeholders_are_refused_at_start_up() {
    let secrets = flat_entries("deploy/kubernetes/secret.example.yaml", "stringData");
    let passwords: Vec<&String> = secrets
        .iter()
        .filter(|(k, _)| k.starts_with("NATS_") && k.ends_with("_PASSWORD"))
        .map(|(_, v)| v)
        .collect();
    assert!(passwords.len() >= 4, "{secrets:?}");
    for password in passwords {
        let vars = [
            ("DATABASE_URL", "postgres://orders_app@db/orders"),
            ("NATS_USER", "api"),
            ("NATS_PASSWORD", password.as_str()),
        ];
        let refused = common::Config::from_lookup(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        })
        .expect_err(password);
        assert_eq!(refused.variable, "NATS_PASSWORD");
    }
    let jwt = secrets.iter().find(|(k, _)| k == "JWT_SECRET").unwrap();
    let refused = common::Config::from_lookup(|k| match k {
        "DATABASE_URL" => Some("postgres://orders_app@db/orders".into()),
        "JWT_SECRET" => Some(jwt.1.clone()),
        _ => None,
    })
    .expect_err("the example JWT key");
    assert_eq!(refused.variable, "JWT_SECRET");
}
