//! Every label of the request metric comes from a fixed set: whatever methods and paths
//! clients make up, `/metrics` keeps the same series.

use crate::helpers::spawn_app;
use crate::metrics::scrape;
use std::collections::BTreeSet;

/// The series of an exposition, without their values.
fn series(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit_once(' ').map(|(series, _)| series.to_owned()))
        .collect()
}

#[tokio::test]
async fn requests_with_made_up_methods_and_paths_add_no_series_to_the_metrics() {
    let app = spawn_app().await;
    let metrics = format!("{}/metrics", app.metrics);
    // A made-up method token, long ones included (a client may send tens of KB).
    let method = |i: usize| {
        let token = format!("MADE{i}UP{}", "X".repeat(i % 4 * 1000));
        reqwest::Method::from_bytes(token.as_bytes()).unwrap()
    };
    let round = |i: usize| {
        let app = &app;
        async move {
            let made_up = [
                app.url("/api/v1/products"),
                app.url(&format!("/api/v1/products/{}", uuid::Uuid::new_v4())),
                app.url(&format!("/nowhere/{i}")),
            ];
            for url in made_up {
                let res = app.client.request(method(i), url).send().await.unwrap();
                assert!(res.status().is_client_error(), "{}", res.status());
            }
            let res = app
                .get(&format!("/api/v1/orders/{}", uuid::Uuid::new_v4()))
                .await;
            assert_eq!(res.status(), 401);
        }
    };
    round(0).await;
    scrape(&metrics).await;
    let before = series(&scrape(&metrics).await);

    for i in 1..=200 {
        round(i).await;
    }

    let after = series(&scrape(&metrics).await);
    assert_eq!(
        after.difference(&before).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "new series"
    );
    assert_eq!(before.len(), after.len());
    let request_series: Vec<&String> = after
        .iter()
        .filter(|s| s.starts_with("http_request_duration_seconds_count"))
        .collect();
    for expected in [
        r#"method="other",route="/api/v1/products",status="405""#,
        r#"method="other",route="/api/v1/products/{id}",status="405""#,
        r#"method="other",route="unmatched",status="404""#,
        r#"method="GET",route="/api/v1/orders/{id}",status="401""#,
    ] {
        assert!(
            request_series.iter().any(|s| s.contains(expected)),
            "{expected} in {request_series:#?}"
        );
    }
}
