//! The HTTP client webhooks are sent with, guarded against server-side request forgery: https
//! only, every address it connects to checked after the name lookup (a name resolving to
//! private, loopback, link-local, multicast or metadata addresses is never connected to, on
//! any attempt, whatever it resolved to when the endpoint was registered), an address written
//! in the URL checked before the request, no redirects followed, no proxy, and at most 64 KiB
//! of an answer read. `WEBHOOK_ALLOW_PRIVATE_NETWORKS` lifts the address and scheme checks
//! (development and tests only).

use common::config::WebhookConfig;
use common::webhooks::{check_url, forbidden_address};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most of an answer read; the rest is not waited for.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// How much of an answer the delivery log keeps.
pub const LOGGED_ANSWER_BYTES: usize = 1024;

/// What became of one attempt.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status code, when the endpoint answered in time.
    pub status: Option<u16>,
    /// Why there is no status code (a timeout, a refused address, a reset connection).
    pub error: Option<String>,
    /// The first KiB of the answer's body.
    pub body: String,
    pub duration: Duration,
}

impl Answer {
    /// A 2xx within the timeout.
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Sends webhooks.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    allow_private: bool,
}

impl Sender {
    pub fn new(config: &WebhookConfig) -> anyhow::Result<Self> {
        common::startup::install_tls_provider();
        let allow_private = config.allow_private_networks;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            })
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .dns_resolver(PublicOnly { allow_private })
            .https_only(!allow_private)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .user_agent(concat!(
                "order-service-webhooks/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()?;
        Ok(Sender {
            client,
            allow_private,
        })
    }

    /// POSTs `body` (JSON) with `headers` to `url` and reads the answer.
    pub async fn post(&self, url: &str, headers: &[(&str, String)], body: String) -> Answer {
        let started = Instant::now();
        let failed = |error: String| Answer {
            status: None,
            error: Some(error),
            body: String::new(),
            duration: started.elapsed(),
        };
        // An address written in the URL is never looked up, so it is checked here.
        if let Err(refusal) = check_url(url, self.allow_private) {
            return failed(format!("refused: {refusal}"));
        }
        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) => return failed(describe(&e)),
        };
        let status = response.status().as_u16();
        let mut read = Vec::new();
        // The timeout covers the body too; a receiver that keeps sending is cut at the bound.
        while read.len() < MAX_ANSWER_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => read.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) if e.is_timeout() => return failed(describe(&e)),
                // The status already says what the receiver meant.
                Err(_) => break,
            }
        }
        read.truncate(LOGGED_ANSWER_BYTES);
        Answer {
            status: Some(status),
            error: None,
            body: String::from_utf8_lossy(&read).into_owned(),
            duration: started.elapsed(),
        }
    }
}

/// A short cause for the delivery log: what failed, with the innermost error.
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_request() {
        "request failed"
    } else {
        "failed"
    };
    let mut source: &dyn std::error::Error = e;
    while let Some(inner) = source.source() {
        source = inner;
    }
    let mut text = format!("{what}: {source}");
    text.truncate(500);
    text
}

/// Resolves names and keeps only the public addresses; a name with none left is refused.
struct PublicOnly {
    allow_private: bool,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (public, refused): (Vec<_>, Vec<_>) = resolved
                .into_iter()
                .partition(|a| allow_private || forbidden_address(a.ip()).is_none());
            if public.is_empty() {
                let why = refused
                    .first()
                    .and_then(|a| {
                        forbidden_address(a.ip()).map(|kind| format!("{} ({kind})", a.ip()))
                    })
                    .unwrap_or_else(|| "no address".into());
                return Err(format!("refused: {host} resolves to {why}").into());
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender() -> Sender {
        let config = common::Config::from_lookup(|k| {
            (k == "DATABASE_URL").then(|| "postgres://localhost/x".to_owned())
        })
        .expect("config");
        Sender::new(&config.webhooks).expect("a client")
    }

    #[tokio::test]
    async fn an_address_in_the_url_that_is_not_public_is_never_connected_to() {
        let answer = sender()
            .post("https://169.254.169.254/latest/meta-data", &[], "{}".into())
            .await;
        assert_eq!(answer.status, None);
        assert!(
            answer
                .error
                .as_deref()
                .is_some_and(|e| e.contains("cloud metadata")),
            "{answer:?}"
        );
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_after_the_lookup() {
        let answer = sender()
            .post("https://localhost:1/hook", &[], "{}".into())
            .await;
        assert_eq!(answer.status, None);
        let error = answer.error.unwrap_or_default();
        assert!(
            error.contains("refused") && error.contains("loopback"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn plain_http_is_refused() {
        let answer = sender()
            .post("http://example.com/hook", &[], "{}".into())
            .await;
        assert!(answer.error.is_some_and(|e| e.contains("https")));
    }
}
