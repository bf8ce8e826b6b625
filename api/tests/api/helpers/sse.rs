//! Order event streams (Server-Sent Events) read by a real SSE client: `eventsource-stream`
//! over a streaming HTTP response.

use super::TestUser;
use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::{Stream, StreamExt};
use serde_json::Value;
use std::pin::Pin;
use std::time::Duration;

/// Longest a test waits for the next event.
pub const PATIENCE: Duration = Duration::from_secs(20);

type Events = Pin<Box<dyn Stream<Item = Result<Event, EventStreamError<reqwest::Error>>> + Send>>;

/// An open event stream.
pub struct Sse {
    events: Events,
}

impl Sse {
    /// The next event; panics if none comes in time or the stream ends.
    pub async fn next(&mut self) -> Event {
        self.next_or_end()
            .await
            .expect("the stream ended before the next event")
    }

    /// The next event, or `None` when the stream ends; panics if neither happens in time.
    pub async fn next_or_end(&mut self) -> Option<Event> {
        match tokio::time::timeout(PATIENCE, self.events.next()).await {
            Ok(Some(Ok(event))) => Some(event),
            Ok(Some(Err(e))) => panic!("stream error: {e}"),
            Ok(None) => None,
            Err(_) => panic!("no event within {PATIENCE:?}"),
        }
    }

    /// The data of the next event, which must be of `kind`.
    pub async fn next_of(&mut self, kind: &str) -> (Event, Value) {
        let event = self.next().await;
        assert_eq!(event.event, kind, "{event:?}");
        let data = serde_json::from_str(&event.data).expect("JSON data");
        (event, data)
    }
}

/// The timeline entry id an event carries.
pub fn entry_id(event: &Event) -> i64 {
    event.id.parse().expect("numeric event id")
}

/// `GET base+path` as `user`, asking for an event stream, with `Last-Event-ID` if given.
pub async fn request(
    base: &str,
    user: &TestUser,
    path: &str,
    last_event_id: Option<&str>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(&user.token)
        .header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    req.send().await.expect("request")
}

/// Opens a stream that must be accepted.
pub async fn open(base: &str, user: &TestUser, path: &str, last_event_id: Option<&str>) -> Sse {
    let res = request(base, user, path, last_event_id).await;
    assert_eq!(res.status(), 200, "opening {path}");
    assert_eq!(
        res.headers()["content-type"]
            .to_str()
            .expect("content type"),
        "text/event-stream"
    );
    Sse {
        events: Box::pin(res.bytes_stream().eventsource()),
    }
}
