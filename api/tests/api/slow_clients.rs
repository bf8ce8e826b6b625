//! A connection must send a request's headers within `HTTP_HEADER_READ_TIMEOUT_SECS`, else it
//! is closed; what the bound does not cut is a response in progress, an event stream included.

use crate::helpers::{PATIENCE, spawn_app_with};
use common::domain::Role;
use futures::StreamExt;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection; returns what it sent.
async fn until_closed(mut tcp: TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return received,
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
}

fn address(base: &str) -> String {
    base.trim_start_matches("http://").to_owned()
}

#[tokio::test]
async fn connections_that_send_half_a_request_line_are_closed_within_the_bound() {
    let app = spawn_app_with(&[("HTTP_HEADER_READ_TIMEOUT_SECS", "1")]).await;
    let started = Instant::now();
    let mut half_sent = Vec::new();
    for _ in 0..100 {
        let mut tcp = TcpStream::connect(address(&app.address)).await.unwrap();
        tcp.write_all(b"GET /api/v1/prod").await.unwrap();
        half_sent.push(tcp);
    }

    let closed = tokio::time::timeout(
        Duration::from_secs(5),
        futures::future::join_all(half_sent.into_iter().map(until_closed)),
    )
    .await
    .expect("every half-sent request's connection closed");

    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900),
        "closed after {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(3), "closed after {elapsed:?}");
    for received in closed {
        let text = String::from_utf8_lossy(&received);
        assert!(!text.contains("200 OK"), "{text}");
    }
}

#[tokio::test]
async fn headers_trickled_in_slower_than_the_bound_are_cut_off() {
    let app = spawn_app_with(&[("HTTP_HEADER_READ_TIMEOUT_SECS", "1")]).await;
    let mut tcp = TcpStream::connect(address(&app.address)).await.unwrap();
    let request = b"GET /api/v1/products HTTP/1.1\r\nHost: shop\r\nX-Slow: yes\r\n\r\n";
    let started = Instant::now();
    let mut cut_off = false;
    for byte in request {
        if tcp.write_all(&[*byte]).await.is_err() {
            cut_off = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        if started.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    let received = tokio::time::timeout(Duration::from_secs(5), until_closed(tcp))
        .await
        .expect("closed");
    let text = String::from_utf8_lossy(&received);
    assert!(cut_off || !text.contains("200 OK"), "answered: {text}");
    assert!(!text.contains("200 OK"), "answered: {text}");
}

#[tokio::test]
async fn a_request_sent_in_time_is_answered_and_an_event_stream_outlives_the_bound() {
    let app = spawn_app_with(&[
        ("HTTP_HEADER_READ_TIMEOUT_SECS", "1"),
        ("SSE_HEARTBEAT_SECS", "1"),
    ])
    .await;
    assert_eq!(app.get("/api/v1/products").await.status(), 200);
    let customer = app.create_user(Role::Client).await;
    let res = crate::helpers::request(&app.address, &customer, "/api/v1/orders/events", None).await;
    assert_eq!(res.status(), 200);
    let mut body = res.bytes_stream();
    let started = Instant::now();
    let mut heartbeats = 0;
    while started.elapsed() < Duration::from_secs(3) {
        let chunk = tokio::time::timeout(PATIENCE, body.next())
            .await
            .expect("a heartbeat in time")
            .expect("the stream stays open past the header read bound")
            .unwrap();
        heartbeats += String::from_utf8_lossy(&chunk)
            .matches(": keep-alive")
            .count();
    }
    assert!(heartbeats >= 2, "{heartbeats} heartbeats");
}
