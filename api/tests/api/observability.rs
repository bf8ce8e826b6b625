//! Operating the system: one order followed through the JSON logs of the api and the workers
//! by its correlation id and trace id, and server errors logged once with their cause. The
//! metrics are in `metrics`.

use crate::helpers::{
    LogBuffer, TestApp, TestUser, assert_problem, capture_json_logs, spawn_app_behind_proxies,
    spawn_system,
};
use common::domain::Role;
use serde_json::{Value, json};
use tracing::subscriber::DefaultGuard;

fn one_line(product: uuid::Uuid, quantity: i32) -> Value {
    json!({"items": [{"product_id": product, "quantity": quantity}]})
}

/// The value of `field` on the line itself or on any of its spans.
fn field<'a>(line: &'a Value, span: Option<&str>, field: &str) -> Option<&'a str> {
    let spans = line["spans"].as_array().into_iter().flatten();
    match span {
        None => line[field].as_str(),
        Some(name) => spans
            .filter(|s| s["name"] == name)
            .find_map(|s| s[field].as_str()),
    }
}

/// A system whose logs are captured in the production JSON format, with a client and ten
/// mugs, and a correlation id for the order the test places.
struct Traced {
    app: TestApp,
    client: TestUser,
    mug: uuid::Uuid,
    correlation: String,
    logs: LogBuffer,
    // Dropped last, once the app has stopped logging.
    _guard: DefaultGuard,
}

/// A [`Traced`] system logging under `filter`. The test runtime has one thread, so the api's
/// and the workers' tasks log into the capture too.
async fn traced_system(filter: &str) -> Traced {
    let (logs, guard) = capture_json_logs(filter);
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let mug = app.products().create("Mug", 1250, 10).await;
    Traced {
        app,
        client,
        mug,
        correlation: format!("corr-{}", uuid::Uuid::new_v4()),
        logs,
        _guard: guard,
    }
}

impl Traced {
    /// Places an order of `quantity` mugs with the correlation id and `headers`.
    async fn place(&self, quantity: i32, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut all = vec![
            ("prefer", "wait=10"),
            ("x-request-id", self.correlation.as_str()),
        ];
        all.extend_from_slice(headers);
        self.app
            .post_as(
                &self.client,
                "/api/v1/orders",
                &one_line(self.mug, quantity),
                &all,
            )
            .await
    }
}

#[tokio::test]
async fn one_order_is_followed_through_api_and_worker_logs_by_its_correlation_id() {
    let traced = traced_system(
        "info,workers=debug,common::messaging=debug,hyper=off,hyper_util=off,reqwest=off",
    )
    .await;
    let (logs, correlation) = (&traced.logs, &traced.correlation);
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");

    let res = traced.place(2, &[("traceparent", &traceparent)]).await;
    assert_eq!(res.status(), 201);
    let order: Value = res.json().await.unwrap();
    assert_eq!(order["status"], "CONFIRMED");
    let order_id = order["id"].as_str().unwrap().to_owned();
    // The api answered on the order's status event; give the worker step a moment to log
    // its outcome after acknowledging the command.
    common::testing::eventually(
        std::time::Duration::from_secs(10),
        "the place command handled",
        || async {
            logs.json_lines()
                .iter()
                .any(|l| {
                    field(l, Some("message"), "consumer") == Some("inventory-place")
                        && l["message"] == "message handled"
                })
                .then_some(())
        },
    )
    .await;

    let text = logs.text();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object: {e}: {l}"))
        })
        .collect();
    let of_order: Vec<&Value> = lines
        .iter()
        .filter(|l| l.to_string().contains(correlation.as_str()))
        .collect();

    // The api: the command published inside the request span, naming user, order and trace.
    let api_line = of_order
        .iter()
        .find(|l| field(l, Some("http"), "correlation_id") == Some(correlation.as_str()))
        .unwrap_or_else(|| panic!("no api line with the correlation id:\n{text}"));
    assert_eq!(
        field(api_line, Some("http"), "user_id"),
        Some(traced.client.id.to_string().as_str())
    );
    assert_eq!(field(api_line, Some("http"), "trace_id"), Some(trace_id));
    assert_eq!(field(api_line, None, "order_id"), Some(order_id.as_str()));

    // Every worker step of this order: same correlation id, same order, same trace.
    let mut consumers: Vec<&str> = of_order
        .iter()
        .filter_map(|l| {
            let consumer = field(l, Some("message"), "consumer")?;
            assert_eq!(
                field(l, Some("message"), "correlation_id"),
                Some(correlation.as_str())
            );
            assert_eq!(
                field(l, Some("message"), "order_id"),
                Some(order_id.as_str()),
                "{l}"
            );
            assert_eq!(field(l, Some("message"), "trace_id"), Some(trace_id), "{l}");
            Some(consumer)
        })
        .collect();
    consumers.sort_unstable();
    consumers.dedup();
    // Readers of the order's events (the webhooks' fan-out) may have logged by now too; the
    // order itself took one step.
    consumers.retain(|c| *c != "webhooks-events");
    assert_eq!(consumers, ["inventory-place"], "one step: {text}");

    // The logs never carry the access token.
    assert!(!text.contains(&traced.client.token), "a token was logged");
}

#[tokio::test]
async fn a_request_without_traceparent_starts_one_trace_that_its_messages_continue() {
    let traced =
        traced_system("info,common::messaging=debug,hyper=off,hyper_util=off,reqwest=off").await;
    let correlation = &traced.correlation;

    let res = traced.place(1, &[]).await;
    assert_eq!(res.status(), 201);

    let published = traced
        .logs
        .json_lines()
        .into_iter()
        .find(|l| {
            l["message"] == "message published"
                && field(l, Some("http"), "correlation_id") == Some(correlation.as_str())
        })
        .unwrap_or_else(|| panic!("no publish of the request:\n{}", traced.logs.text()));
    let span_trace = field(&published, Some("http"), "trace_id").expect("the span's trace id");
    assert_eq!(span_trace.len(), 32, "{span_trace}");
    assert_eq!(
        published["trace_id"].as_str(),
        Some(span_trace),
        "the command continues the request's trace"
    );
}

#[tokio::test]
async fn a_server_error_is_logged_once_with_its_cause_chain_in_the_request_span() {
    let (logs, _guard) = capture_json_logs("info,hyper=off,hyper_util=off,reqwest=off");
    let (app, pg, _nats) = spawn_app_behind_proxies().await;
    let user = app.create_user(Role::Client).await;
    let request_id = format!("outage-{}", uuid::Uuid::new_v4());

    pg.cut();
    let res = app
        .send_as(
            reqwest::Method::GET,
            &user,
            "/api/v1/orders",
            None,
            &[("x-request-id", &request_id)],
        )
        .await;
    // PostgreSQL behind a cut proxy: 503 when the pool sees the outage, 500 when the
    // connection attempt fails with a protocol error; a server error either way.
    let status = res.status().as_u16();
    assert!(status == 503 || status == 500, "{status}");
    let body = assert_problem(res, status).await;
    assert!(
        !body["detail"].as_str().unwrap().contains("SSL"),
        "the cause stays out of the answer: {body}"
    );
    let text = logs.text();

    let errors: Vec<Value> = logs
        .json_lines()
        .into_iter()
        .filter(|l| l["level"] == "ERROR" && l.to_string().contains(&request_id))
        .collect();
    assert_eq!(errors.len(), 1, "one error line for the request:\n{text}");
    let line = &errors[0];
    assert_eq!(line["status"], status, "{line}");
    assert!(
        line["error.cause_chain"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        "the cause chain: {line}"
    );
    assert_eq!(
        field(line, Some("http"), "request_id"),
        Some(request_id.as_str())
    );
}
