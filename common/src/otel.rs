//! Span export with OpenTelemetry (OTLP over HTTP), on only when `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set. The standard `OTEL_*` variables apply
//! (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`, ...).
//!
//! Exported spans continue the trace context [`crate::trace`] propagates: the request and
//! message spans take the received `traceparent` as their remote parent, and a publish carries
//! the id of its own exported span, so the collector shows one trace from the HTTP request to
//! the last worker step.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::OnceLock;

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether an OTLP endpoint is configured in the environment.
pub fn configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var(v).is_ok_and(|v| !v.trim().is_empty()))
}

/// Builds the exporting tracer provider, kept for [`shutdown`]. Without `endpoint` the
/// exporter reads the `OTEL_EXPORTER_OTLP_*` variables; with one, spans go to
/// `{endpoint}/v1/traces`.
pub(crate) fn tracer(
    service: &str,
    endpoint: Option<&str>,
) -> Result<opentelemetry_sdk::trace::Tracer, String> {
    use opentelemetry_otlp::WithExportConfig;
    let mut builder = opentelemetry_otlp::SpanExporter::builder().with_http();
    if let Some(endpoint) = endpoint {
        builder = builder.with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')));
    }
    let exporter = builder.build().map_err(|e| e.to_string())?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name(service.to_owned());
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("order-service");
    PROVIDER
        .set(provider)
        .map_err(|_| "the tracer provider is already installed".to_owned())?;
    Ok(tracer)
}

/// Whether spans are exported (the exporter was installed at start-up).
pub fn enabled() -> bool {
    PROVIDER.get().is_some()
}

/// Flushes and stops the exporter; call once before the process exits. Blocks: call it
/// outside the async runtime's worker threads (e.g. in `spawn_blocking`).
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get()
        && let Err(e) = provider.shutdown()
    {
        eprintln!("OpenTelemetry exporter shutdown: {e}");
    }
}
