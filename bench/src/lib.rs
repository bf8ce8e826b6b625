//! Benchmarks and fault drills of the order service: a load generator that drives a running
//! deployment over HTTP, the database ceiling it is compared with, and the drill's checks.

pub mod after_sale;
pub mod bare;
pub mod browse;
pub mod ceiling;
pub mod charts;
pub mod drill;
pub mod driver;
pub mod load;
pub mod reads;
pub mod rss;
pub mod run;
pub mod scenarios;
pub mod setup;
pub mod soak;
pub mod stats;
pub mod synchronous;
pub mod verify;

/// Deletes every stream whose name starts with `{namespace}_`; returns how many.
pub async fn purge_namespace(nats_url: &str, namespace: &str) -> anyhow::Result<usize> {
    use futures::TryStreamExt;
    anyhow::ensure!(
        !namespace.is_empty(),
        "refusing to purge the empty namespace"
    );
    let client = async_nats::connect(nats_url).await?;
    let js = async_nats::jetstream::new(client);
    let names: Vec<String> = js.stream_names().try_collect().await?;
    let prefix = format!("{namespace}_");
    let mut deleted = 0;
    for name in names.iter().filter(|n| n.starts_with(&prefix)) {
        js.delete_stream(name).await?;
        deleted += 1;
    }
    Ok(deleted)
}
