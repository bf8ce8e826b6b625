//! Pull requests for a durable consumer, kept outstanding and renewed by the loop itself.
//!
//! The server answers a pull request (`$JS.API.CONSUMER.MSG.NEXT.<stream>.<durable>`) with up
//! to `batch` messages, an idle heartbeat while it has none to give, and a `408` once the
//! request expires. Renewal must not wait for that last answer: a reconnect, a server restart
//! or a new consumer leader forgets waiting requests without a word, and a client that waits
//! for the `408` then stops asking for seconds while messages pile up. So this module:
//!
//! * keeps one inbox for the consumer's lifetime, so nothing the server delivers for an older
//!   request is lost;
//! * asks again whenever fewer than half a batch is still asked for, so a busy consumer never
//!   waits for a round trip between requests;
//! * gives up on every request and asks again at once when nothing at all (a message, a
//!   heartbeat, a status) was heard for two heartbeats, and drops a request that outlived its
//!   expiry without a `408`.

use async_nats::jetstream::{self, consumer::PullConsumer};
use async_nats::{StatusCode, Subscriber};
use futures::{FutureExt, StreamExt};
use serde::Serialize;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// How much to ask for, and how the server keeps the request alive.
#[derive(Debug, Clone, Copy)]
pub struct PullOptions {
    /// Messages asked for per request.
    pub batch: usize,
    /// How long the server keeps a request waiting.
    pub expires: Duration,
    /// How often the server says it is still there while it has nothing to deliver; at most
    /// half of `expires`. Two missed heartbeats renew the requests.
    pub heartbeat: Duration,
}

/// The body of a pull request (`JSApiConsumerGetNextRequest`), in nanoseconds.
#[derive(Serialize)]
struct PullRequest {
    batch: usize,
    expires: u128,
    idle_heartbeat: u128,
}

/// A request the server may still be serving.
#[derive(Debug)]
struct Request {
    sent: Instant,
    remaining: usize,
}

/// Waits after a refused request or a failed publish before asking again.
const PAUSE: Duration = Duration::from_millis(500);
/// How long past its expiry a request's `408` may be late before it is given up.
const EXPIRY_GRACE: Duration = Duration::from_millis(250);

/// The pull side of one consumer loop.
pub struct Puller {
    name: String,
    client: async_nats::Client,
    context: jetstream::Context,
    request_subject: String,
    inbox: String,
    subscriber: Subscriber,
    options: PullOptions,
    /// Oldest first: the server serves and expires them in the order sent.
    requests: VecDeque<Request>,
    /// When the server was last heard from on the inbox.
    heard: Instant,
    /// No request before this instant (after a refusal or a failed publish).
    paused_until: Option<Instant>,
    draining: bool,
}

impl Puller {
    pub async fn new(
        name: &str,
        consumer: &PullConsumer,
        context: jetstream::Context,
        options: PullOptions,
    ) -> anyhow::Result<Self> {
        let client = context.client();
        let inbox = client.new_inbox();
        let subscriber = client.subscribe(inbox.clone()).await?;
        let info = consumer.cached_info();
        Ok(Puller {
            name: name.to_owned(),
            request_subject: format!(
                "$JS.API.CONSUMER.MSG.NEXT.{}.{}",
                info.stream_name, info.name
            ),
            client,
            context,
            inbox,
            subscriber,
            options: PullOptions {
                heartbeat: options.heartbeat.min(options.expires / 2),
                ..options
            },
            requests: VecDeque::new(),
            heard: Instant::now(),
            paused_until: None,
            draining: false,
        })
    }

    /// Stops asking for more; [`Puller::next_chunk`] then returns what the requests already
    /// sent still bring, and an empty chunk once they have all ended.
    pub fn drain(&mut self) {
        self.draining = true;
    }

    /// Waits for at least one message and returns every message received by then, at most
    /// `max`, with the next request already sent if one is due, so the server keeps delivering
    /// while the chunk is handled. Empty only when draining and no request is left.
    pub async fn next_chunk(&mut self, max: usize) -> Vec<jetstream::Message> {
        let mut chunk = Vec::new();
        loop {
            // What already arrived comes first: it may be the heartbeat that keeps a request
            // alive after the loop was busy for a while.
            while chunk.len() < max {
                match self.subscriber.next().now_or_never() {
                    Some(Some(message)) => self.receive(message, &mut chunk),
                    Some(None) => self.closed(),
                    None => break,
                }
                if self.subscriber_closed() {
                    break;
                }
            }
            self.expire_overdue();
            if !self.draining {
                self.ask_if_needed().await;
            }
            if !chunk.is_empty() || (self.draining && self.requests.is_empty()) {
                return chunk;
            }
            let deadline = self.next_deadline();
            tokio::select! {
                received = self.subscriber.next() => match received {
                    Some(message) => self.receive(message, &mut chunk),
                    None => self.closed(),
                },
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    fn receive(&mut self, message: async_nats::Message, chunk: &mut Vec<jetstream::Message>) {
        self.heard = Instant::now();
        if let Some(message) = self.take(message) {
            chunk.push(message);
        }
    }

    /// The subscription ended (the client is closing): nothing more will come.
    fn closed(&mut self) {
        self.requests.clear();
        self.draining = true;
    }

    fn subscriber_closed(&self) -> bool {
        self.draining && self.requests.is_empty()
    }

    /// Accounts for what arrived; returns it if it is a stream message.
    fn take(&mut self, message: async_nats::Message) -> Option<jetstream::Message> {
        match message.status.unwrap_or(StatusCode::OK) {
            StatusCode::OK => {
                if let Some(front) = self.requests.front_mut() {
                    front.remaining = front.remaining.saturating_sub(1);
                    if front.remaining == 0 {
                        self.requests.pop_front();
                    }
                }
                Some(jetstream::Message {
                    message,
                    context: self.context.clone(),
                })
            }
            StatusCode::IDLE_HEARTBEAT => None,
            StatusCode::TIMEOUT | StatusCode::NOT_FOUND => {
                self.requests.pop_front();
                None
            }
            status => {
                // 409 (a limit exceeded, the consumer deleted, a leadership change, a server
                // shutting down), 400 or 503: this request is over; ask again after a pause.
                let description = message.description.as_deref().unwrap_or_default();
                tracing::warn!(consumer = %self.name, %status, description, "pull request ended by the server");
                self.requests.pop_front();
                self.paused_until = Some(Instant::now() + PAUSE);
                None
            }
        }
    }

    /// Gives up requests the server has gone quiet about, or that outlived their expiry.
    fn expire_overdue(&mut self) {
        let now = Instant::now();
        if !self.requests.is_empty() && now >= self.heard + self.options.heartbeat * 2 {
            tracing::info!(consumer = %self.name, "no heartbeat from the server; asking again");
            self.requests.clear();
            return;
        }
        let lifetime = self.options.expires + EXPIRY_GRACE;
        while self
            .requests
            .front()
            .is_some_and(|r| now >= r.sent + lifetime)
        {
            tracing::debug!(consumer = %self.name, "pull request expired without a word; asking again");
            self.requests.pop_front();
        }
    }

    /// When the next request must be given up, or the pause ends.
    fn next_deadline(&self) -> Instant {
        let watchdog = self.heard + self.options.heartbeat * 2;
        let expiry = self
            .requests
            .front()
            .map(|r| r.sent + self.options.expires + EXPIRY_GRACE);
        [Some(watchdog), expiry, self.paused_until]
            .into_iter()
            .flatten()
            .filter(|at| *at > Instant::now())
            .min()
            .unwrap_or_else(|| Instant::now() + self.options.heartbeat)
    }

    /// Sends a request when less than half a batch is asked for.
    async fn ask_if_needed(&mut self) {
        let now = Instant::now();
        if self.paused_until.is_some_and(|until| now < until) {
            return;
        }
        self.paused_until = None;
        let asked: usize = self.requests.iter().map(|r| r.remaining).sum();
        if asked > self.options.batch / 2 {
            return;
        }
        let body = PullRequest {
            batch: self.options.batch,
            expires: self.options.expires.as_nanos(),
            idle_heartbeat: self.options.heartbeat.as_nanos(),
        };
        let payload = match serde_json::to_vec(&body) {
            Ok(payload) => payload,
            Err(e) => {
                tracing::error!(consumer = %self.name, error = %e, "pull request not encoded");
                self.paused_until = Some(now + PAUSE);
                return;
            }
        };
        match self
            .client
            .publish_with_reply(
                self.request_subject.clone(),
                self.inbox.clone(),
                payload.into(),
            )
            .await
        {
            Ok(()) => {
                if self.requests.is_empty() {
                    // The watchdog counts from the first request waiting, not from before.
                    self.heard = now;
                }
                self.requests.push_back(Request {
                    sent: now,
                    remaining: self.options.batch,
                });
            }
            Err(e) => {
                tracing::warn!(consumer = %self.name, error = %e, "pull request not sent");
                self.paused_until = Some(now + PAUSE);
            }
        }
    }
}
