//! W3C Trace Context carried from the HTTP request through every message, with OpenTelemetry's
//! own types: its [`TraceContextPropagator`] reads and writes the `traceparent` and
//! `tracestate` headers, over HTTP headers and NATS headers alike; this module is the only
//! place that does.
//!
//! The api takes the caller's context (or starts a trace) and runs the request in it;
//! [`crate::messaging::Bus`] writes a child context into every publish; the consumer loop reads
//! it back and runs the handler in it, so its own publishes continue the same trace. Trace ids
//! land in the log spans (`trace_id`), so one order's path can be followed through the logs of
//! every process by its trace id as well as by its correlation id. With span export on (see
//! [`crate::otel`]), the request and message spans are the exported spans of that trace.
//!
//! The context is the current OpenTelemetry [`Context`] of the running task ([`scope`]) rather
//! than passed around, so handlers that publish do not need to know about it.

pub use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState};
use opentelemetry::{SpanId, TraceId};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
use std::future::Future;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The header carrying the W3C trace context, on HTTP requests and NATS messages.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// The caller's context in HTTP request headers; empty when there is none or it is invalid.
pub fn from_http(headers: &http::HeaderMap) -> Context {
    extract(&opentelemetry_http::HeaderExtractor(headers))
}

/// The publisher's context in a NATS message's headers; empty when there is none.
pub fn from_nats(headers: Option<&async_nats::HeaderMap>) -> Context {
    match headers {
        Some(headers) => extract(&NatsHeaders(headers)),
        None => Context::new(),
    }
}

/// Writes `cx` (`traceparent`, and `tracestate` when it has one) into NATS headers.
pub fn inject_nats(cx: &Context, headers: &mut async_nats::HeaderMap) {
    TraceContextPropagator::new().inject_context(cx, &mut NatsHeadersMut(headers));
}

fn extract(extractor: &dyn Extractor) -> Context {
    TraceContextPropagator::new().extract_with_context(&Context::new(), extractor)
}

/// The trace id of `cx` as 32 lower-case hex digits, for log fields.
pub fn trace_id(cx: &Context) -> Option<String> {
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

/// `cx` as a `traceparent` value, if it holds a valid span context.
pub fn traceparent(cx: &Context) -> Option<String> {
    let mut headers = async_nats::HeaderMap::new();
    inject_nats(cx, &mut headers);
    headers
        .get(TRACEPARENT_HEADER)
        .map(|v| v.as_str().to_owned())
}

/// A new trace, sampled.
pub fn new_root() -> Context {
    let ids = RandomIdGenerator::default();
    with_span(
        ids.new_trace_id(),
        TraceFlags::SAMPLED,
        TraceState::default(),
    )
}

/// A new span in `parent`'s trace, or a new trace when `parent` holds none.
pub fn child_of(parent: &Context) -> Context {
    let span = parent.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return new_root();
    }
    with_span(sc.trace_id(), sc.trace_flags(), sc.trace_state().clone())
}

fn with_span(trace_id: TraceId, flags: TraceFlags, state: TraceState) -> Context {
    let span_id: SpanId = RandomIdGenerator::default().new_span_id();
    let sc = SpanContext::new(trace_id, span_id, flags, false, state);
    Context::new().with_remote_span_context(sc)
}

/// Starts the work of `span` under the received `parent` (empty: a new trace). With span
/// export on, `span` becomes the exported child of `parent` and its context is returned;
/// otherwise a new child context. Call before `span` is first entered.
pub fn continue_in(span: &tracing::Span, parent: &Context) -> Context {
    adopt(span, parent);
    context_in(span, parent)
}

/// With span export on, makes `parent` the remote parent of `span`. Call before `span` is
/// first entered.
pub fn adopt(span: &tracing::Span, parent: &Context) {
    if crate::otel::enabled() && parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent.clone());
    }
}

/// The context of work running in `span` (adopted from `parent`): the exported span's, or
/// else a new child of `parent`.
pub fn context_in(span: &tracing::Span, parent: &Context) -> Context {
    exported(span).unwrap_or_else(|| child_of(parent))
}

/// The context for an outgoing message: the current exported span's when spans are exported,
/// else a child of the current context, or a new trace.
pub fn for_outgoing() -> Context {
    exported(&tracing::Span::current()).unwrap_or_else(|| child_of(&Context::current()))
}

/// The exported context of `span`, when spans are exported.
fn exported(span: &tracing::Span) -> Option<Context> {
    if !crate::otel::enabled() {
        return None;
    }
    let cx = span.context();
    cx.span().span_context().is_valid().then_some(cx)
}

/// Runs `future` with `cx` as the current context.
pub fn scope<F: Future>(cx: Context, future: F) -> impl Future<Output = F::Output> {
    opentelemetry::context::FutureExt::with_context(future, cx)
}

/// NATS headers, read by the propagator.
struct NatsHeaders<'a>(&'a async_nats::HeaderMap);

impl Extractor for NatsHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_ref()).collect()
    }
}

/// NATS headers, written by the propagator.
struct NatsHeadersMut<'a>(&'a mut async_nats::HeaderMap);

impl Injector for NatsHeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn nats_with(traceparent: &str) -> async_nats::HeaderMap {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(TRACEPARENT_HEADER, traceparent);
        headers
    }

    #[test]
    fn the_specification_example_round_trips_over_nats_and_http() {
        let cx = from_nats(Some(&nats_with(EXAMPLE)));
        assert_eq!(
            trace_id(&cx).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(traceparent(&cx).as_deref(), Some(EXAMPLE));

        let mut http = http::HeaderMap::new();
        http.insert(TRACEPARENT_HEADER, http::HeaderValue::from_static(EXAMPLE));
        assert_eq!(traceparent(&from_http(&http)).as_deref(), Some(EXAMPLE));
    }

    #[test]
    fn invalid_trace_parents_are_ignored() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-xyz92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(trace_id(&from_nats(Some(&nats_with(bad)))), None, "{bad}");
        }
        assert_eq!(trace_id(&from_nats(None)), None);
    }

    #[test]
    fn a_child_keeps_the_trace_and_changes_the_span() {
        let parent = from_nats(Some(&nats_with(EXAMPLE)));
        let child = child_of(&parent);
        assert_eq!(trace_id(&child), trace_id(&parent));
        assert_ne!(
            child.span().span_context().span_id(),
            parent.span().span_context().span_id()
        );
        let unrelated = child_of(&Context::new());
        assert!(trace_id(&unrelated).is_some());
        assert_ne!(trace_id(&unrelated), trace_id(&parent));
    }

    #[tokio::test]
    async fn outgoing_messages_continue_the_current_trace() {
        let parent = new_root();
        let out = scope(parent.clone(), async { for_outgoing() }).await;
        assert_eq!(trace_id(&out), trace_id(&parent));
        assert_ne!(
            out.span().span_context().span_id(),
            parent.span().span_context().span_id()
        );
        let outside = for_outgoing();
        assert_ne!(trace_id(&outside), trace_id(&parent), "a new trace outside");
    }
}
