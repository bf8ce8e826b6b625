//! How one consumer loop is tuned: its pulls, its chunks, its handler's time and its retries.

use super::pull::PullOptions;
use std::time::Duration;

/// Tuning of one consumer loop.
#[derive(Debug, Clone)]
pub struct LoopOptions {
    /// How much each pull request asks for, and how the server keeps it alive.
    pub pull: PullOptions,
    /// The most messages in one chunk, and so in one group handled together.
    pub chunk: usize,
    /// Chunks handled at once. With one, the next chunk is taken once the last is settled; with
    /// more, the next is handled while the last one's transaction or announcements wait, as
    /// if another worker process took it (so only for handlers whose messages need no order
    /// among themselves), as long as the chunks in hand are small.
    pub chunks_in_flight: usize,
    /// The longest a handler may take before its messages are retried (below the consumer's
    /// ack wait, so the server does not hand them to another worker meanwhile).
    pub handler_timeout: Duration,
    /// Must match the consumer's `max_deliver`: the last delivery of a failing message is
    /// dead-lettered instead of retried.
    pub max_deliver: i64,
    /// First and longest redelivery delay after a transient failure.
    pub min_retry_delay: Duration,
    pub max_retry_delay: Duration,
}

impl Default for LoopOptions {
    fn default() -> Self {
        LoopOptions {
            pull: PullOptions {
                batch: 256,
                expires: Duration::from_secs(2),
                heartbeat: Duration::from_millis(250),
            },
            chunk: 64,
            chunks_in_flight: 1,
            handler_timeout: Duration::from_secs(20),
            max_deliver: 10,
            min_retry_delay: Duration::from_millis(250),
            max_retry_delay: Duration::from_secs(30),
        }
    }
}
