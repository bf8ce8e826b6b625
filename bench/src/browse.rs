//! `browse`: anonymous catalogue reads (lists with filters and sorts, then details), and its
//! baseline, a bare axum handler answering the bytes of a real list page.

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

/// `browse`, list phase: anonymous catalogue pages with filters.
pub async fn browse_lists(api: Arc<Api>, clients: usize, duration: Duration) -> Measured {
    let recorder = Arc::new(Recorder::new());
    let ran = driver::drive(
        "browse list",
        clients,
        Plan::For(duration),
        Arc::clone(&recorder),
        move |i, _| {
            let api = Arc::clone(&api);
            async move {
                let query = LIST_QUERIES[usize::try_from(i).unwrap_or(0) % LIST_QUERIES.len()];
                let url = api.url(query);
                get(&api, url).await
            }
        },
    )
    .await;
    measured(ran, &recorder)
}

/// `browse`, detail phase: anonymous product pages.
pub async fn browse_details(
    api: Arc<Api>,
    products: Arc<Vec<Uuid>>,
    clients: usize,
    duration: Duration,
) -> Measured {
    let recorder = Arc::new(Recorder::new());
    let ran = driver::drive(
        "browse detail",
        clients,
        Plan::For(duration),
        Arc::clone(&recorder),
        move |i, _| {
            let (api, products) = (Arc::clone(&api), Arc::clone(&products));
            async move {
                let id = products[usize::try_from(i).unwrap_or(0) % products.len()];
                let url = api.url(&format!("/products/{id}"));
                get(&api, url).await
            }
        },
    )
    .await;
    measured(ran, &recorder)
}

/// The baseline for `browse`: a bare axum handler answering the bytes of a real list page from
/// a fixed buffer, on its own runtime (like a separate server process), driven the same way.
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
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || -> anyhow::Result<()> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener)?;
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
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop_rx.await;
                })
                .await?;
            Ok(())
        })
    });
    let bare = Arc::new(Api::new(&format!("http://{addr}"), api.http.clone()));
    let recorder = Arc::new(Recorder::new());
    let ran = driver::drive(
        "bare axum",
        clients,
        Plan::For(duration),
        Arc::clone(&recorder),
        move |_, _| {
            let bare = Arc::clone(&bare);
            async move {
                let url = bare.url("/products");
                get(&bare, url).await
            }
        },
    )
    .await;
    let _ = stop_tx.send(());
    let _ = tokio::task::spawn_blocking(move || server.join()).await;
    Ok((measured(ran, &recorder), size))
}
