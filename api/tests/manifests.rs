//! The Kubernetes manifests in deploy/kubernetes validate offline: built-in kinds against the
//! Kubernetes OpenAPI schemas bundled by the `kubernetes-validate` package (installed by
//! scripts/test), KEDA ScaledObjects structurally and against the consumers the workers create.

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
