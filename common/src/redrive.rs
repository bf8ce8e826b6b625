//! Re-driving a dead letter: publishing it again to its original subject, then removing it
//! from `DEAD_LETTERS`.
//!
//! The api does not do this itself: that would mean its NATS user may publish to every
//! subject a message can be dead-lettered from, payment events included, so a compromised api
//! could mark orders paid. It asks instead, in core NATS request/reply on `ops.redrive` (under
//! the namespace), and the order worker answers ([`serve`]): it may publish those subjects
//! anyway, as it consumes them, and it re-drives only what the dead-letter stream holds, as
//! it was stored there, with a fresh message id.

use crate::messaging::{
    Bus, DLQ_DELIVERIES_HEADER, DLQ_REASON_HEADER, DLQ_SEQUENCE_HEADER, DLQ_STREAM_HEADER,
    DLQ_SUBJECT_HEADER,
};
use crate::nats::DEAD_LETTERS;
use async_nats::HeaderMap;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// The request subject, relative to the namespace.
pub const REDRIVE_SUBJECT: &str = "ops.redrive";
/// The queue group the order worker's replicas share, so one of them answers each request.
const QUEUE_GROUP: &str = "redrive";

/// Re-drive the dead letter at `sequence`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RedriveRequest {
    pub sequence: u64,
}

/// What became of a re-drive request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RedriveReply {
    /// Published again to `subject` (relative to the namespace) and removed.
    Redriven { subject: String },
    /// No dead letter has this sequence (never, or already re-driven).
    NotFound,
    /// Nothing changed: the request was malformed or JetStream did not store the publish.
    Failed { reason: String },
}

/// Answers re-drive requests until `shutdown`.
pub async fn serve(client: async_nats::Client, bus: Bus, shutdown: CancellationToken) {
    let subject = bus.namespace().subject(REDRIVE_SUBJECT);
    let mut requests = match client
        .queue_subscribe(subject.clone(), QUEUE_GROUP.into())
        .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, %subject, "cannot serve dead-letter re-drives");
            return;
        }
    };
    loop {
        let request = tokio::select! {
            () = shutdown.cancelled() => break,
            request = requests.next() => match request {
                Some(r) => r,
                None => break,
            },
        };
        let Some(reply_to) = request.reply else {
            continue;
        };
        let reply = match serde_json::from_slice::<RedriveRequest>(&request.payload) {
            Ok(r) => redrive(&bus, r.sequence).await,
            Err(e) => RedriveReply::Failed {
                reason: format!("malformed request: {e}"),
            },
        };
        let payload = serde_json::to_vec(&reply).unwrap_or_default();
        if let Err(e) = client.publish(reply_to, payload.into()).await {
            tracing::warn!(error = %e, "re-drive reply not sent");
        }
    }
}

/// Publishes the dead letter at `sequence` again to its original subject with a fresh
/// message id (the original may still be inside the duplicate window), without the
/// dead-letter headers, then deletes it. Handlers are idempotent, so a re-drive of something
/// already applied changes nothing.
pub async fn redrive(bus: &Bus, sequence: u64) -> RedriveReply {
    let failed = |reason: String| RedriveReply::Failed { reason };
    let name = bus.namespace().name(DEAD_LETTERS);
    let stream = match bus.jetstream().get_stream(&name).await {
        Ok(s) => s,
        Err(e) => return failed(format!("stream {name}: {e}")),
    };
    let Ok(message) = stream.get_raw_message(sequence).await else {
        return RedriveReply::NotFound;
    };
    let Some(subject) = message
        .headers
        .get(DLQ_SUBJECT_HEADER)
        .map(|v| v.as_str().to_owned())
    else {
        return failed("the dead letter names no original subject".into());
    };
    let mut headers = HeaderMap::new();
    for (header, values) in message.headers.iter() {
        let header = header.to_string();
        let is_bookkeeping = header.starts_with("Nats-")
            || [
                DLQ_REASON_HEADER,
                DLQ_SUBJECT_HEADER,
                DLQ_DELIVERIES_HEADER,
                DLQ_STREAM_HEADER,
                DLQ_SEQUENCE_HEADER,
            ]
            .contains(&header.as_str());
        if !is_bookkeeping {
            for v in values {
                headers.append(header.as_str(), v.as_str());
            }
        }
    }
    let msg_id = format!("redrive:{}:{}", sequence, uuid::Uuid::new_v4());
    let full_subject = bus.namespace().subject(&subject);
    if let Err(e) = bus
        .publish_raw(full_subject, msg_id, headers, message.payload.clone())
        .await
    {
        tracing::error!(error = %e, sequence, "re-drive publish failed");
        return failed(e.to_string());
    }
    if let Err(e) = stream.delete_message(sequence).await {
        // Published but still listed: a second re-drive would deliver it twice, which the
        // idempotent handlers absorb.
        tracing::warn!(error = %e, sequence, "re-driven dead letter not removed");
    }
    tracing::info!(sequence, %subject, "dead letter re-driven");
    RedriveReply::Redriven { subject }
}
