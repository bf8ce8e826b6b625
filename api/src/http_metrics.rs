//! The request metric, `http_request_duration_seconds{method, route, status}`, whose labels
//! all come from fixed sets: a client can send any method token and any path, and every new
//! label value would be a new series kept for the life of the process.

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

/// The `route` of a request that matched no route (404s, a scanner's paths).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The `method` label: one of the methods HTTP defines, else `other`.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Records every request's duration by method, route template (never the raw path) and
/// status code (three digits, chosen by the api).
pub async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED_ROUTE.to_owned(), |p| p.as_str().to_owned());
    let method = method_label(req.method());
    let res = next.run(req).await;
    metrics::histogram!(
        "http_request_duration_seconds",
        "method" => method,
        "route" => route,
        "status" => res.status().as_u16().to_string(),
    )
    .record(start.elapsed().as_secs_f64());
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_made_up_method_is_labelled_other_and_the_standard_ones_by_name() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        for made_up in ["FOO", "get", "PROPFIND", &"X".repeat(10_000)] {
            let method = Method::from_bytes(made_up.as_bytes()).expect("a method token");
            assert_eq!(method_label(&method), "other", "{}", &made_up[..3]);
        }
    }
}
