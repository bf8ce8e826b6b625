//! The PromQL of the Grafana dashboard (deploy/grafana/order-service.json) and of the alerts
//! (deploy/prometheus/alerts.yaml), and the metric names it reads.

#![allow(dead_code)] // each test binary uses a part

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Metrics the alerts read from outside the service: kube-state-metrics.
pub const EXTERNAL_METRICS: [&str; 1] = ["kube_pod_status_ready"];

pub fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

pub fn dashboard() -> Value {
    let path = repo_file("deploy/grafana/order-service.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?} is not JSON: {e}"))
}

/// Every panel of the dashboard that is not a row, rows' inner panels included.
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        if panel["type"] == "row" {
            out.extend(panel["panels"].as_array().into_iter().flatten());
        } else {
            out.push(panel);
        }
    }
    out
}

/// (panel title and query ref, PromQL) of every query of the dashboard, with Grafana's
/// variables replaced by what they stand for at run time.
pub fn dashboard_queries() -> Vec<(String, String)> {
    let dashboard = dashboard();
    panels(&dashboard)
        .into_iter()
        .flat_map(|panel| {
            panel["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |t| {
                    let name = format!("{} {}", panel["title"], t["refId"]);
                    let expr = t["expr"].as_str().unwrap_or_default();
                    (name, without_grafana_variables(expr))
                })
        })
        .collect()
}

/// Grafana's built-in interval variables as durations; a template variable as "any value".
pub fn without_grafana_variables(expr: &str) -> String {
    let expr = expr
        .replace("$__rate_interval", "5m")
        .replace("$__interval", "1m")
        .replace("$__range", "1h");
    let mut out = String::with_capacity(expr.len());
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' {
            while chars
                .peek()
                .is_some_and(|c| c.is_alphanumeric() || *c == '_')
            {
                chars.next();
            }
            out.push_str(".*");
        } else {
            out.push(c);
        }
    }
    out
}

/// (alert name, PromQL) of every alert of the PrometheusRule, read with PyYAML (which
/// scripts/test installs with the manifest validator).
pub fn alert_queries() -> Vec<(String, String)> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .args([
            "-c",
            "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)",
        ])
        .arg(repo_file("deploy/prometheus/alerts.yaml"))
        .output()
        .unwrap_or_else(|e| panic!("{python} runs ({e}); scripts/test sets it up"));
    assert!(
        out.status.success(),
        "alerts.yaml read: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rule: Value = serde_json::from_slice(&out.stdout).unwrap();
    rule["spec"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .filter_map(|r| {
            Some((
                r["alert"].as_str()?.to_owned(),
                r["expr"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

const KEYWORDS: [&str; 8] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
];
/// Words that are never metric names: set operators, literals, and aggregations (which may be
/// followed by `by (…)` rather than by their parenthesis).
const NOT_METRICS: [&str; 19] = [
    "and",
    "or",
    "unless",
    "inf",
    "nan",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// The metric names a PromQL expression reads: what is left once strings, label matchers,
/// ranges, numbers, function and aggregation names, keywords and grouping labels are skipped.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    let skip_until = |from: usize, open: char, close: char| -> usize {
        let mut depth = 0;
        let mut j = from;
        let mut quoted = false;
        while j < chars.len() {
            let c = chars[j];
            if quoted {
                if c == '\\' {
                    j += 1;
                } else if c == '"' {
                    quoted = false;
                }
            } else if c == '"' {
                quoted = true;
            } else if c == open {
                depth += 1;
            } else if c == close {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            j += 1;
        }
        j
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '{' {
            i = skip_until(i, '{', '}');
        } else if c == '[' {
            i = skip_until(i, '[', ']');
        } else if c == '"' || c == '\'' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != c {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            i = j + 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let called = chars.get(next) == Some(&'(');
            if KEYWORDS.contains(&word.as_str()) {
                if called {
                    // `by (route, le)`: grouping labels, not metrics.
                    i = skip_until(next, '(', ')');
                }
            } else if !called && !NOT_METRICS.contains(&word.to_ascii_lowercase().as_str()) {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}
