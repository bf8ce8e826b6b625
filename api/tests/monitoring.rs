//! The monitoring files validate offline: the alerts (deploy/prometheus/alerts.yaml) pass
//! `promtool check rules` and their unit tests (deploy/prometheus/check.py), and every query of
//! the Grafana dashboard (deploy/grafana/order-service.json) is PromQL that promtool accepts.
//! Whether the binaries export what these read is checked against running binaries in
//! api/tests/api/monitoring.rs.

#![allow(clippy::unwrap_used)] // tests fail loudly on a broken set-up

#[path = "support/promql.rs"]
mod promql;

use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::process::Command;

fn said(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_alerts_pass_promtool_and_each_is_fired_and_silent_in_its_unit_tests() {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .arg(promql::repo_file("deploy/prometheus/check.py"))
        .output()
        .unwrap_or_else(|e| panic!("{python} runs ({e}); scripts/test sets it up"));
    let said = said(&out);

    assert!(out.status.success(), "{said}");
    assert!(said.contains("alerts valid"), "{said}");
}

#[test]
fn every_dashboard_query_is_promql_that_promtool_accepts() {
    // Each query as a recording rule: `promtool check rules` parses every expression.
    let rules: Vec<Value> = promql::dashboard_queries()
        .iter()
        .enumerate()
        .map(|(i, (_, expr))| json!({"record": format!("dashboard:query_{i}"), "expr": expr}))
        .collect();
    assert!(!rules.is_empty(), "the dashboard has no queries");
    let file = std::env::temp_dir().join(format!("dashboard-{}.rules.json", uuid::Uuid::new_v4()));
    std::fs::write(
        &file,
        json!({"groups": [{"name": "dashboard", "rules": rules}]}).to_string(),
    )
    .unwrap();

    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("promtool runs ({e}); scripts/test installs it"));
    let _ = std::fs::remove_file(&file);
    let said = said(&out);

    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!("{} rules found", rules.len())),
        "{said}"
    );
}

#[test]
fn the_dashboard_shows_requests_orders_messages_lag_and_pools() {
    let read: BTreeSet<String> = promql::dashboard_queries()
        .iter()
        .flat_map(|(_, expr)| promql::metric_names(expr))
        .collect();

    for family in [
        "http_request_duration_seconds_count",
        "http_request_duration_seconds_bucket",
        "orders_placed_total",
        "order_transitions_total",
        "messages_processed_total",
        "message_processing_seconds_bucket",
        "message_redeliveries_total",
        "dead_letters_total",
        "consumer_pending_messages",
        "db_pool_connections",
        "db_pool_max_connections",
    ] {
        assert!(read.contains(family), "no panel reads {family}: {read:?}");
    }
}

#[test]
fn every_dashboard_panel_has_a_unique_id_and_reads_the_chosen_data_source() {
    let dashboard = promql::dashboard();
    let panels = promql::panels(&dashboard);
    let mut ids = BTreeSet::new();

    for panel in &panels {
        let title = &panel["title"];
        assert!(ids.insert(panel["id"].as_u64()), "duplicate id: {title}");
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        assert!(
            !panel["targets"].as_array().unwrap().is_empty(),
            "{title} queries nothing"
        );
    }
    assert!(
        dashboard["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "datasource" && v["type"] == "datasource")
    );
}

#[test]
fn metric_names_are_read_from_promql_without_functions_labels_or_durations() {
    let names = promql::metric_names(
        r#"histogram_quantile(0.99, sum by (route, le) (rate(http_request_duration_seconds_bucket{route="/api/v1/orders", status=~"5.."}[5m])))
           / on (route) group_left sum without (pod) (up offset 10m) > bool 0.5
           or max(stock_drift_products) unless absent(db_pool_connections)"#,
    );

    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        [
            "db_pool_connections",
            "http_request_duration_seconds_bucket",
            "stock_drift_products",
            "up"
        ]
    );
}

#[test]
fn the_runbook_points_to_every_operations_file() {
    let runbook = std::fs::read_to_string(promql::repo_file("docs/operations.md")).unwrap();
    let listed = runbook
        .split("\n### Dashboards, alerts and runbook\n")
        .nth(1)
        .and_then(|s| s.split("\n### ").next())
        .expect("a section listing the dashboards, alerts and runbook");

    for file in [
        "deploy/grafana/order-service.json",
        "deploy/prometheus/alerts.yaml",
        "deploy/prometheus/alerts.test.yaml",
        "deploy/prometheus/check.py",
        "docs/operations.md",
        "docs/asyncapi.json",
        "/openapi.json",
    ] {
        assert!(
            listed.contains(file),
            "the runbook's list does not name {file}"
        );
        if !file.starts_with('/') {
            assert!(promql::repo_file(file).is_file(), "{file} does not exist");
        }
    }
}
