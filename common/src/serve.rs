//! Serving HTTP/1.1 connections: the client's address on every request, `TCP_NODELAY`, a bound
//! on how long a connection may take to send a request's headers, and graceful shutdown: the
//! api's port and the workers' (health and metrics) both serve through it.
//!
//! `axum::serve` takes no configuration, and hyper enforces its header read timeout only with
//! a timer, which `axum::serve` does not give it: a client could open connections and send
//! half a request line on each, holding them (and their buffers) for ever. Here a connection
//! that has not sent a request's complete headers within `HTTP_HEADER_READ_TIMEOUT_SECS` is
//! closed, whether it is new or idle between two requests (hyper times both the same way).

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::serve::{Listener, ListenerExt};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// Serves `router` on `listener` until `shutdown` completes; then stops accepting, lets every
/// connection finish its request in flight (idle ones close at once), and returns when all
/// are closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    // Without TCP_NODELAY a small write (an SSE event) sent soon after another waits for the
    // client's delayed ACK, some 40 ms.
    let mut listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let connections = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Accept errors (a full file table) are waited out by the listener.
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let service = router
            .clone()
            .map_request(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                req
            });
        let connection = http.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            // A header read timeout, a client gone: nothing the server can do about it.
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection closed");
            }
        });
    }
    drop(listener);
    connections.shutdown().await;
}
