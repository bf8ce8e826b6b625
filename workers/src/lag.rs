//! Consumer lag gauges: what each durable consumer still has to do, sampled periodically
//! from the server (the same numbers KEDA scales the worker Deployments on).

use async_nats::jetstream::consumer::PullConsumer;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the server is asked; cheap (one request per consumer).
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(10);

/// Samples every consumer until `shutdown`: `consumer_pending_messages` (not yet delivered),
/// `consumer_ack_pending_messages` (delivered, not yet acknowledged) and
/// `consumer_redelivered_messages`, each labelled by durable name.
pub async fn run(
    consumers: Vec<(String, PullConsumer)>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        for (name, consumer) in &consumers {
            match consumer.get_info().await {
                Ok(info) => record(
                    name,
                    info.num_pending,
                    info.num_ack_pending,
                    info.num_redelivered,
                ),
                Err(e) => {
                    tracing::debug!(consumer = %name, error = %e, "consumer info unavailable")
                }
            }
        }
    }
}

fn record(name: &str, pending: u64, ack_pending: usize, redelivered: usize) {
    let name = name.to_owned();
    metrics::gauge!("consumer_pending_messages", "consumer" => name.clone()).set(pending as f64);
    metrics::gauge!("consumer_ack_pending_messages", "consumer" => name.clone())
        .set(ack_pending as f64);
    metrics::gauge!("consumer_redelivered_messages", "consumer" => name).set(redelivered as f64);
}
