//! A real HTTP webhook receiver for the tests: it verifies every request with the reference
//! Standard Webhooks implementation (the `standardwebhooks` crate) against the secrets it is
//! given, answers 401 to one that does not verify, and otherwise what the test scripted (a
//! status, or no answer at all), recording each request as it came.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the receiver answers a request that verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Status(u16),
    /// Never answers (until the sender gives up).
    Hang,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub webhook_id: String,
    pub timestamp: i64,
    pub signature: String,
    pub body: serde_json::Value,
    pub raw: String,
    pub at: Instant,
    /// The secrets (their positions in [`Receiver::verify_with`]) that verify it.
    pub verified_by: Vec<usize>,
}

#[derive(Default)]
struct Inner {
    secrets: Vec<String>,
    script: VecDeque<Reply>,
    otherwise: Option<Reply>,
    received: Vec<Received>,
}

/// A receiver listening on 127.0.0.1; it stops with the test's runtime.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

impl Receiver {
    /// A receiver answering 200 to whatever verifies.
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = axum::Router::new()
            .route("/hook", post(receive))
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, inner }
    }

    /// Verifies requests with these secrets (`whsec_…`): a request verified by none gets 401.
    pub fn verify_with(&self, secrets: &[&str]) {
        self.inner.lock().unwrap().secrets = secrets.iter().map(|s| (*s).to_owned()).collect();
    }

    /// Answers the next verified requests with `replies`, in turn, then 200.
    pub fn script(&self, replies: &[Reply]) {
        self.inner.lock().unwrap().script = replies.iter().copied().collect();
    }

    /// Answers every verified request (after the script) with `reply`.
    pub fn always(&self, reply: Reply) {
        self.inner.lock().unwrap().otherwise = Some(reply);
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// Waits until `n` requests came (deadline `within`), and returns them.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        super::eventually(
            within,
            &format!("{n} webhook requests at {}", self.url),
            || async {
                let received = self.received();
                (received.len() >= n).then_some(received)
            },
        )
        .await
    }
}

async fn receive(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let at = Instant::now();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let reply = {
        let mut inner = inner.lock().unwrap();
        let verified_by: Vec<usize> = inner
            .secrets
            .iter()
            .enumerate()
            .filter(|(_, secret)| {
                standardwebhooks::Webhook::new(secret)
                    .and_then(|w| w.verify(&body, &headers))
                    .is_ok()
            })
            .map(|(i, _)| i)
            .collect();
        let verified = !verified_by.is_empty();
        inner.received.push(Received {
            webhook_id: header("webhook-id"),
            timestamp: header("webhook-timestamp").parse().unwrap_or_default(),
            signature: header("webhook-signature"),
            body: serde_json::from_slice(&body).unwrap_or_default(),
            raw: String::from_utf8_lossy(&body).into_owned(),
            at,
            verified_by,
        });
        if !verified {
            Reply::Status(401)
        } else {
            inner
                .script
                .pop_front()
                .or(inner.otherwise)
                .unwrap_or(Reply::Status(200))
        }
    };
    match reply {
        Reply::Status(code) => {
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        }
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK
        }
    }
}
