//! One attempt of a delivery, when its ticket comes: claim it, send it when it is due (signed
//! with every live secret), record what the endpoint answered, and say when the stream should
//! bring the ticket again. Attempts never run before they are due and never two at once for one
//! delivery, so a ticket that arrives early or twice changes nothing.

use super::client::{Answer, Sender};
use super::sign::signature;
use super::store::{self, Attempt, Unclaimed};
use chrono::Utc;
use common::config::WebhookConfig;
use common::domain::WebhookDeliveryStatus;
use common::webhooks::{AttemptDelivery, SecretBox, webhook_id};
use rand::Rng;
use sqlx::PgPool;
use std::time::Duration;

/// What to do with the ticket's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Nothing left to do: acknowledge it.
    Done,
    /// Bring it again after this long.
    Again(Duration),
}

/// How long a database failure waits before the ticket is tried again.
const DATABASE_RETRY: Duration = Duration::from_secs(2);
/// Waits of at least this long get up to a tenth more, at random, so a receiver's recovery
/// is not met by every retry at once.
const JITTER_FROM: Duration = Duration::from_secs(60);

/// What an attempt needs besides its ticket.
pub struct Attempter {
    pub db: PgPool,
    pub sender: Sender,
    pub secrets: SecretBox,
    pub config: WebhookConfig,
}

impl Attempter {
    /// How long a claim holds a delivery: longer than any attempt takes.
    fn lease(&self) -> Duration {
        self.config.timeout * 2 + Duration::from_secs(5)
    }

    /// Handles one ticket; `on_answer` hears each attempt's duration.
    #[tracing::instrument(skip_all, fields(delivery_id = %ticket.delivery_id, endpoint_id = %ticket.endpoint_id))]
    pub async fn attempt(
        &self,
        ticket: &AttemptDelivery,
        on_answer: impl FnOnce(Duration),
    ) -> Next {
        let claimed =
            match store::claim(&self.db, ticket.delivery_id, ticket.ticket, self.lease()).await {
                Ok(Ok(claimed)) => claimed,
                Ok(Err(Unclaimed::Done)) => return Next::Done,
                Ok(Err(Unclaimed::Leased(left))) => {
                    return Next::Again(left + Duration::from_millis(100));
                }
                Err(e) => return self.database_failed(&e),
            };
        if !claimed.enabled {
            return match store::give_up(
                &self.db,
                ticket.delivery_id,
                ticket.ticket,
                "the endpoint is disabled",
            )
            .await
            {
                Ok(()) => {
                    metrics::counter!("webhook_deliveries_total", "outcome" => WebhookDeliveryStatus::Failed.label()).increment(1);
                    Next::Done
                }
                Err(e) => self.database_failed(&e),
            };
        }
        if claimed.next_attempt_at > claimed.now {
            let early = (claimed.next_attempt_at - claimed.now)
                .to_std()
                .unwrap_or_default();
            if let Err(e) = store::release(&self.db, ticket.delivery_id, ticket.ticket).await {
                tracing::warn!(error = %e, "an early ticket's claim was not released; it lapses");
            }
            return Next::Again(early);
        }
        let attempted_at = Utc::now();
        let answer =
            match self.signing_keys(ticket, &claimed.secret, claimed.previous_secret.as_deref()) {
                Ok(keys) => {
                    let id = webhook_id(ticket.delivery_id);
                    let timestamp = attempted_at.timestamp();
                    let headers = [
                        ("webhook-id", id.clone()),
                        ("webhook-timestamp", timestamp.to_string()),
                        (
                            "webhook-signature",
                            signature(&keys, &id, timestamp, &claimed.payload),
                        ),
                    ];
                    self.sender
                        .post(&claimed.url, &headers, claimed.payload)
                        .await
                }
                Err(error) => Answer {
                    status: None,
                    error: Some(error),
                    body: String::new(),
                    duration: Duration::ZERO,
                },
            };
        on_answer(answer.duration);
        metrics::histogram!("webhook_attempt_duration_seconds")
            .record(answer.duration.as_secs_f64());
        let succeeded = answer.succeeded();
        let scheduled = usize::try_from(claimed.scheduled_attempts).unwrap_or(0) + 1;
        let wait = (!succeeded)
            .then(|| self.config.retry_schedule.get(scheduled).copied())
            .flatten()
            .map(jittered);
        let next = match (succeeded, wait) {
            (true, _) => (WebhookDeliveryStatus::Succeeded, None),
            (false, Some(wait)) => (
                WebhookDeliveryStatus::Pending,
                chrono::Duration::from_std(wait)
                    .ok()
                    .map(|w| attempted_at + w),
            ),
            (false, None) => (WebhookDeliveryStatus::Failed, None),
        };
        let error = answer.error.clone().or_else(|| {
            (!succeeded).then(|| format!("answered {}", answer.status.unwrap_or_default()))
        });
        let attempt = Attempt {
            delivery_id: ticket.delivery_id,
            ticket: ticket.ticket,
            endpoint_id: ticket.endpoint_id,
            attempted_at,
            duration: answer.duration,
            status_code: answer.status,
            error: answer.error.as_deref(),
            response_body: &answer.body,
            succeeded,
            next,
        };
        let recorded = match store::record(
            &self.db,
            &attempt,
            self.config.disable_after,
            error.as_deref(),
        )
        .await
        {
            Ok(recorded) => recorded,
            // The attempt was made but not recorded: the ticket comes again and the receiver
            // may get the same webhook-id twice, which it deduplicates.
            Err(e) => return self.database_failed(&e),
        };
        if let Some(reason) = &recorded.disabled {
            tracing::warn!(reason, "webhook endpoint disabled");
            metrics::counter!("webhook_endpoints_disabled_total").increment(1);
        }
        tracing::debug!(
            status = answer.status,
            error = answer.error,
            outcome = next.0.label(),
            "webhook attempt"
        );
        if !recorded.current && !succeeded {
            // A retry or replay replaced this ticket meanwhile; its own message drives it now.
            return Next::Done;
        }
        metrics::counter!("webhook_deliveries_total", "outcome" => next.0.label()).increment(1);
        match wait {
            Some(wait) if !succeeded => Next::Again(wait),
            _ => Next::Done,
        }
    }

    /// The HMAC keys to sign with: the current secret's, then the rotated one's while it signs.
    fn signing_keys(
        &self,
        ticket: &AttemptDelivery,
        secret: &[u8],
        previous: Option<&[u8]>,
    ) -> Result<Vec<Vec<u8>>, String> {
        std::iter::once(secret)
            .chain(previous)
            .map(|sealed| {
                self.secrets
                    .open(ticket.endpoint_id, sealed)
                    .and_then(|s| s.key())
                    .map_err(|e| format!("not signed: {e}"))
            })
            .collect()
    }

    fn database_failed(&self, e: &sqlx::Error) -> Next {
        tracing::warn!(error = %e, "webhook delivery state unavailable; the ticket comes again");
        Next::Again(DATABASE_RETRY)
    }
}

fn jittered(wait: Duration) -> Duration {
    if wait < JITTER_FROM {
        return wait;
    }
    wait + wait.mul_f64(rand::rng().random_range(0.0..0.1))
}
