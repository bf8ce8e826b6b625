//! Tracing subscriber set-up: human-readable logs for development, one JSON object a line in production,
//! and span export with OpenTelemetry when an OTLP endpoint is configured (see [`crate::otel`]).
//!
//! JSON lines carry the fields of every enclosing span (`spans`) besides the innermost one
//! (`span`), so a line logged deep inside a message handler still names the order, the
//! correlation id, the trace id and, in the api, the authenticated user.

use crate::config::LogFormat;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Installs the global subscriber. Calling it twice is harmless (the second call does nothing),
/// which keeps tests that build several applications in one process simple.
pub fn init(format: LogFormat, filter: &str) {
    init_service("order-service", format, filter);
}

/// Like [`init`], naming the process (`service.name`) for exported spans.
pub fn init_service(service: &str, format: LogFormat, filter: &str) {
    init_exporting(service, format, filter, None);
}

/// Like [`init_service`]; spans are exported when an OTLP endpoint is configured in the
/// environment or `otlp_endpoint` names one (tests use it).
pub fn init_exporting(service: &str, format: LogFormat, filter: &str, otlp_endpoint: Option<&str>) {
    let otel = if crate::otel::configured() || otlp_endpoint.is_some() {
        match crate::otel::tracer(service, otlp_endpoint) {
            Ok(tracer) => Some(tracing_opentelemetry::layer().with_tracer(tracer)),
            Err(e) => {
                eprintln!("OpenTelemetry export disabled: {e}");
                None
            }
        }
    } else {
        None
    };
    let registry = tracing_subscriber::registry()
        .with(env_filter(filter))
        .with(otel);
    let _ = match format {
        LogFormat::Json => registry.with(json_layer(std::io::stdout)).try_init(),
        LogFormat::Pretty => registry.with(fmt::layer().compact()).try_init(),
    };
}

/// The production JSON subscriber writing to `writer`; tests capture logs with it.
pub fn json_subscriber<W>(filter: &str, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::registry()
        .with(env_filter(filter))
        .with(json_layer(writer))
}

fn json_layer<S, W>(writer: W) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(true)
        .with_writer(writer)
}

fn env_filter(filter: &str) -> EnvFilter {
    EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"))
}
