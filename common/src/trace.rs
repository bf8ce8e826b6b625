//! W3C Trace Context (`traceparent`) carried from the HTTP request through every message.
//!
//! The api takes the caller's `traceparent` (or starts a trace) and runs the request inside it;
//! [`crate::messaging::Bus`] writes a child `traceparent` header on every publish; the consumer
//! loop reads it back and runs the handler inside it, so its own publishes continue the same
//! trace. Trace ids land in the log spans (`trace_id`), so one order's path can be followed
//! through the logs of every process by its trace id as well as by its correlation id.
//!
//! The context is held in a task-local rather than passed around, so handlers that publish do
//! not need to know about it.

use std::fmt;
use std::future::Future;

/// The NATS header (and HTTP header) carrying the W3C trace context.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// One position in a trace: the trace, the current span, and the sampled flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub flags: u8,
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

impl TraceContext {
    /// A new trace with a random id, sampled.
    pub fn new_root() -> Self {
        let random = uuid::Uuid::new_v4();
        TraceContext {
            trace_id: *random.as_bytes(),
            span_id: random_span_id(),
            flags: 0x01,
        }
    }

    /// A new span in the same trace.
    pub fn child(&self) -> Self {
        TraceContext {
            trace_id: self.trace_id,
            span_id: random_span_id(),
            flags: self.flags,
        }
    }

    /// Parses a `traceparent` value (version 00, or a later version read as 00 as the
    /// specification asks). Invalid values (all-zero ids, wrong lengths) give `None`.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let mut parts = value.split('-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let span = parts.next()?;
        let flags = parts.next()?;
        if version.len() != 2 || flags.len() != 2 || version.eq_ignore_ascii_case("ff") {
            return None;
        }
        if version == "00" && parts.next().is_some() {
            return None;
        }
        let trace_id: [u8; 16] = hex(trace)?.try_into().ok()?;
        let span_id: [u8; 8] = hex(span)?.try_into().ok()?;
        let flags = *hex(flags)?.first()?;
        if trace_id != [0; 16] && span_id != [0; 8] {
            Some(TraceContext {
                trace_id,
                span_id,
                flags,
            })
        } else {
            None
        }
    }

    /// The trace id as 32 lower-case hex digits.
    pub fn trace_id_hex(&self) -> String {
        to_hex(&self.trace_id)
    }

    pub fn span_id_hex(&self) -> String {
        to_hex(&self.span_id)
    }

    /// The context of the running task, if it runs inside [`TraceContext::scope`].
    pub fn current() -> Option<Self> {
        CURRENT.try_with(|c| *c).ok()
    }

    /// Runs `future` with this context as the current one.
    pub fn scope<F: Future>(self, future: F) -> impl Future<Output = F::Output> {
        CURRENT.scope(self, future)
    }

    /// The context for an outgoing message: the current exported span when spans are exported
    /// (see [`crate::otel`]), else a child of the current context, or a new trace.
    pub fn for_outgoing() -> Self {
        if let Some(exported) = crate::otel::context_of(&tracing::Span::current()) {
            return exported;
        }
        Self::current()
            .map(|c| c.child())
            .unwrap_or_else(Self::new_root)
    }

    /// The context for incoming work: a child of the `traceparent` received, or a new trace.
    pub fn from_incoming(traceparent: Option<&str>) -> Self {
        Self::parent_of_incoming(traceparent).child()
    }

    /// The received `traceparent` itself, or a new trace when there is none (or it is invalid).
    pub fn parent_of_incoming(traceparent: Option<&str>) -> Self {
        traceparent
            .and_then(Self::parse)
            .unwrap_or_else(Self::new_root)
    }

    /// Starts the work of `span` under the received `parent`: with span export on, `span`
    /// becomes the exported child of `parent` and its own context is returned; otherwise a new
    /// child context. Call before `span` is first entered.
    pub fn continue_in(span: &tracing::Span, parent: &TraceContext) -> Self {
        crate::otel::adopt(span, parent);
        crate::otel::context_of(span).unwrap_or_else(|| parent.child())
    }
}

impl fmt::Display for TraceContext {
    /// The `traceparent` header value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            to_hex(&self.trace_id),
            to_hex(&self.span_id),
            self.flags
        )
    }
}

fn random_span_id() -> [u8; 8] {
    loop {
        let bytes = uuid::Uuid::new_v4().into_bytes();
        let mut span = [0u8; 8];
        span.copy_from_slice(&bytes[8..]);
        if span != [0; 8] {
            return span;
        }
    }
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// The `data.order_id` of an envelope, for log fields; `None` when the message has none.
pub fn order_id_in(payload: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Data {
        order_id: Option<uuid::Uuid>,
    }
    #[derive(serde::Deserialize)]
    struct Shape {
        data: Data,
    }
    serde_json::from_slice::<Shape>(payload)
        .ok()?
        .data
        .order_id
        .map(|id| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_specification_example_round_trips() {
        let c = TraceContext::parse(EXAMPLE).expect("valid");
        assert_eq!(c.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(c.span_id_hex(), "00f067aa0ba902b7");
        assert_eq!(c.flags, 1);
        assert_eq!(c.to_string(), EXAMPLE);
    }

    #[test]
    fn invalid_trace_parents_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-xyz92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_child_keeps_the_trace_and_changes_the_span() {
        let parent = TraceContext::parse(EXAMPLE).expect("valid");
        let child = parent.child();
        assert_eq!(child.trace_id, parent.trace_id);
        assert_ne!(child.span_id, parent.span_id);
        let incoming = TraceContext::from_incoming(Some(EXAMPLE));
        assert_eq!(incoming.trace_id, parent.trace_id);
        assert_ne!(TraceContext::from_incoming(None).trace_id, parent.trace_id);
    }

    #[tokio::test]
    async fn outgoing_messages_continue_the_current_trace() {
        let parent = TraceContext::new_root();
        let out = parent.scope(async { TraceContext::for_outgoing() }).await;
        assert_eq!(out.trace_id, parent.trace_id);
        assert_eq!(TraceContext::current(), None);
    }

    #[test]
    fn the_order_id_is_read_from_the_envelope_data() {
        let id = uuid::Uuid::new_v4();
        let with = serde_json::json!({"type": "x", "data": {"order_id": id, "n": 1}});
        assert_eq!(
            order_id_in(with.to_string().as_bytes()),
            Some(id.to_string())
        );
        let without = serde_json::json!({"type": "x", "data": {"n": 1}});
        assert_eq!(order_id_in(without.to_string().as_bytes()), None);
        assert_eq!(order_id_in(b"not json"), None);
    }
}
