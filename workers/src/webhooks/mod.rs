//! The webhooks worker kind (`workers webhooks`): fans each order event out to the endpoints
//! subscribed to it ([`fanout`], durable consumer `webhooks-events` on `EVENTS`) and makes each
//! delivery's attempts when they are due ([`deliver`], durable consumer `webhooks-deliver` on
//! the work-queue stream `WEBHOOKS`), signed per Standard Webhooks ([`sign`]) and sent by a
//! client that connects to public addresses only ([`client`]). Replicas share both consumers.

mod attempt;
mod client;
mod deliver;
mod fanout;
mod limiter;
mod sign;
mod store;

use crate::consumer::{ConsumerLoop, LoopOptions};
use crate::context::Context;
use async_nats::jetstream::consumer::PullConsumer;
use common::messaging::Message;
use common::nats::{self, ConsumerSpec};
use common::webhooks::{AttemptDelivery, EVENT_SUBJECTS, SecretBox};
use futures::future::BoxFuture;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Durable consumer names (without namespace).
pub const WEBHOOKS_EVENTS: &str = "webhooks-events";
pub const WEBHOOKS_DELIVER: &str = "webhooks-deliver";

/// Tickets a consumer may hold unacknowledged: every pending retry is one (JetStream keeps a
/// negatively acknowledged message pending until its delay is over).
pub const MAX_PENDING_TICKETS: i64 = 200_000;
/// How often the pending deliveries per endpoint are counted for the metrics.
const PENDING_SAMPLE: Duration = Duration::from_secs(5);

/// The webhooks kind's work, ready to run: the fan-out loop, the delivery loop and the sampler
/// of pending deliveries, with the consumers to watch for lag.
pub struct Webhooks {
    pub tasks: Vec<BoxFuture<'static, ()>>,
    pub watched: Vec<(String, PullConsumer)>,
}

/// Provisions the kind's consumers. Refuses to start without `WEBHOOK_ENCRYPTION_KEY`: no
/// delivery could be signed.
pub async fn start(ctx: &Context, shutdown: &CancellationToken) -> anyhow::Result<Webhooks> {
    let config = &ctx.config.webhooks;
    let key = config.encryption_key().ok_or_else(|| {
        anyhow::anyhow!(
            "the webhooks worker needs WEBHOOK_ENCRYPTION_KEY (the key the endpoints' signing secrets are encrypted with)"
        )
    })?;
    let secrets = SecretBox::new(key)?;
    let (js, ns) = (ctx.bus.jetstream(), ctx.bus.namespace());
    let events_spec = ConsumerSpec::new(nats::EVENTS, WEBHOOKS_EVENTS, EVENT_SUBJECTS);
    let events = nats::provision_consumer(js, ns, &events_spec).await?;
    let deliver_spec = ConsumerSpec {
        // The handler decides when a delivery has had enough attempts.
        max_deliver: -1,
        // Longer than a ticket waits for its endpoint's turn and its attempt together.
        ack_wait: limiter::SLOT_WAIT + config.timeout * 2 + Duration::from_secs(30),
        max_ack_pending: MAX_PENDING_TICKETS,
        ..ConsumerSpec::new(nats::WEBHOOKS, WEBHOOKS_DELIVER, AttemptDelivery::SUBJECT)
    };
    let deliveries = nats::provision_consumer(js, ns, &deliver_spec).await?;
    let fan_out = ConsumerLoop::new(
        WEBHOOKS_EVENTS,
        events.clone(),
        ctx.bus.clone(),
        fanout::FanOut {
            db: ctx.db.clone(),
            bus: ctx.bus.clone(),
        },
        LoopOptions::default(),
    );
    let deliverer = deliver::Deliverer {
        name: WEBHOOKS_DELIVER.to_owned(),
        consumer: deliveries.clone(),
        bus: ctx.bus.clone(),
        attempter: Arc::new(attempt::Attempter {
            db: ctx.db.clone(),
            sender: client::Sender::new(config)?,
            secrets,
            config: config.clone(),
        }),
        limiter: Arc::new(limiter::Limiter::new(config.endpoint_concurrency)),
    };
    Ok(Webhooks {
        tasks: vec![
            Box::pin(fan_out.run(shutdown.clone())),
            Box::pin(deliverer.run(shutdown.clone())),
            Box::pin(sample_pending(ctx.db.clone(), shutdown.clone())),
        ],
        watched: vec![
            (WEBHOOKS_EVENTS.to_owned(), events),
            (WEBHOOKS_DELIVER.to_owned(), deliveries),
        ],
    })
}

/// Sets `webhook_pending_deliveries{endpoint}` until `shutdown`: the deliveries of each
/// endpoint still waiting for a successful attempt (a deleted endpoint reads 0 once, then is
/// no longer set).
async fn sample_pending(db: sqlx::PgPool, shutdown: CancellationToken) {
    let mut seen = HashSet::new();
    let mut ticks = tokio::time::interval(PENDING_SAMPLE);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shutdown.cancelled() => return,
        }
        match store::pending_per_endpoint(&db).await {
            Ok(counts) => {
                let now: HashSet<_> = counts.iter().map(|(e, _)| *e).collect();
                for gone in seen.difference(&now) {
                    metrics::gauge!("webhook_pending_deliveries", "endpoint" => gone.to_string())
                        .set(0.0);
                }
                for (endpoint, pending) in counts {
                    metrics::gauge!("webhook_pending_deliveries", "endpoint" => endpoint.to_string())
                        .set(pending as f64);
                }
                seen = now;
            }
            Err(e) => tracing::debug!(error = %e, "pending webhook deliveries not counted"),
        }
    }
}
