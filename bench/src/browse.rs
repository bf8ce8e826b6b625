//! `browse`: anonymous catalogue reads (lists with filters and sorts, then details), and its
//! baseline, a bare axum handler answering the bytes of a real list page.

use crate::bare::Bare;
use crate::driver::{self, Outcome, Plan};
use crate::scenarios::{Measured, measured};
use crate::setup::Api;
use crate::stats::Recorder;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The catalogue queries `browse` cycles through.
pub const LIST_QUERIES: &[&str] = &[
    "/products?limit=20",
    "/products?sort=price&limit=20",
    "/products?min_price=1000&max_price=6000&limit=20",
    "/products?in_stock=true&sort=-name&limit=20",
    "/products?q=product%2001&limit=20",
    "/products?sort=-created_at&limit=50",
];

async fn get(api: &Api, url: String) -> Outcome {
    match api.http.get(url).send().await {
        Ok(res) => {
            let status = res.status().as_u16();
            let ok = res.bytes().await.is_ok() && status == 200;
            Outcome::http(status, ok)
        }
        Err(e) => Outcome::error(&e),
    }
}

/// Reads `path(i)` of `api` as request `i`, from `clients` clients for `duration`; a 200 whose
/// whole body arrived is accepted.
async fn read_for(
    label: &str,
    api: Arc<Api>,
    clients: usize,
    duration: Duration,
    path: impl Fn(usize) -> String + Send + Sync + 'static,
) -> Measured {
    let recorder = Arc::new(Recorder::new());
    let ran = driver::drive(
        label,
        clients,
        Plan::For(duration),
        Arc::clone(&recorder),
        move |i, _| {
            let api = Arc::clone(&api);
            let url = api.url(&path(usize::try_from(i).unwrap_or(0)));
            async move { get(&api, url).await }
        },
    )
    .await;
    measured(ran, &recorder)
}

/// `browse`, list phase: anonymous catalogue pages with filters.
pub async fn browse_lists(api: Arc<Api>, clients: usize, duration: Duration) -> Measured {
    read_for("browse list", api, clients, duration, |i| {
        LIST_QUERIES[i % LIST_QUERIES.len()].to_owned()
    })
    .await
}

/// `browse`, detail phase: anonymous product pages.
pub async fn browse_details(
    api: Arc<Api>,
    products: Arc<Vec<Uuid>>,
    clients: usize,
    duration: Duration,
) -> Measured {
    read_for("browse detail", api, clients, duration, move |i| {
        format!("/products/{}", products[i % products.len()])
    })
    .await
}

/// The baseline for `browse`: a bare axum handler answering the bytes of a real list page from
/// a fixed buffer, driven the same way.
pub async fn baseline(
    api: &Api,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<(Measured, usize)> {
    let page = api
        .http
        .get(api.url(LIST_QUERIES[0]))
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let size = page.len();
    let app = axum::Router::new().route(
        "/api/v1/products",
        axum::routing::get(move || {
            let page = page.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    page,
                )
            }
        }),
    );
    let bare = Bare::start(app, api.http.clone())?;
    let measured = read_for(
        "bare axum",
        Arc::clone(&bare.api),
        clients,
        duration,
        |_| "/products".to_owned(),
    )
    .await;
    bare.stop().await;
    Ok((measured, size))
}
