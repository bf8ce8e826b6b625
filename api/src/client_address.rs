//! The client's address, which the rate limits count by: the TCP peer, unless the peer is one
//! of `TRUSTED_PROXIES`. From a trusted proxy, the forwarding header it sets
//! (`TRUSTED_PROXY_HEADER`: `X-Forwarded-For` or `Forwarded`) is read from the right, each
//! proxy having appended the address it received the request from, and the first address that
//! is not itself a trusted proxy is the client. What lies left of it was written by the client
//! and proves nothing. A hop that is not an address (`unknown`, an obfuscated name) ends the
//! walk at the proxy that wrote it.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::{HeaderMap, request::Parts};
use common::config::ForwardedHeader;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// The address a request came from, as the rate limits see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no peer address on a request")))?;
        Ok(ClientAddress(client_address(
            peer,
            &parts.headers,
            &state.config.trusted_proxies,
            state.config.trusted_proxy_header,
        )))
    }
}

/// The client of a request from `peer` carrying `headers`.
pub fn client_address(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[IpNet],
    header: ForwardedHeader,
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer.to_canonical();
    if !is_trusted(&client) {
        return client;
    }
    for hop in hops(headers, header).iter().rev() {
        let Some(ip) = hop.map(|ip| ip.to_canonical()) else {
            return client;
        };
        client = ip;
        if !is_trusted(&ip) {
            return ip;
        }
    }
    client
}

/// The hops of the forwarding header, left to right (`None` for one that is not an address).
fn hops(headers: &HeaderMap, header: ForwardedHeader) -> Vec<Option<IpAddr>> {
    let name = match header {
        ForwardedHeader::XForwardedFor => "x-forwarded-for",
        ForwardedHeader::Forwarded => "forwarded",
    };
    let mut hops = Vec::new();
    for value in headers.get_all(name) {
        let Ok(value) = value.to_str() else {
            hops.push(None);
            continue;
        };
        for element in value.split(',') {
            let node = match header {
                ForwardedHeader::XForwardedFor => Some(element.trim()),
                ForwardedHeader::Forwarded => element.split(';').find_map(|pair| {
                    let (key, value) = pair.trim().split_once('=')?;
                    key.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| value.trim().trim_matches('"'))
                }),
            };
            hops.push(node.and_then(parse_node));
        }
    }
    hops
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1` or `[2001:db8::1]:4711`.
fn parse_node(node: &str) -> Option<IpAddr> {
    node.parse::<IpAddr>()
        .ok()
        .or_else(|| node.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            node.strip_prefix('[')
                .and_then(|n| n.strip_suffix(']'))
                .and_then(|n| n.parse().ok())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().expect("cidr")).collect()
    }

    fn headers(name: &'static str, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(name, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    const XFF: ForwardedHeader = ForwardedHeader::XForwardedFor;

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let h = headers("x-forwarded-for", &["203.0.113.9"]);
        let got = client_address(ip("198.51.100.7"), &h, &nets(&["10.0.0.0/8"]), XFF);
        assert_eq!(got, ip("198.51.100.7"));
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let h = headers("x-forwarded-for", &["1.1.1.1, 203.0.113.9", "10.0.0.5"]);
        let got = client_address(ip("10.0.0.1"), &h, &nets(&["10.0.0.0/8"]), XFF);
        assert_eq!(got, ip("203.0.113.9"), "the spoofed 1.1.1.1 is ignored");
    }

    #[test]
    fn a_trusted_peer_without_the_header_is_the_client() {
        let got = client_address(
            ip("10.0.0.1"),
            &HeaderMap::new(),
            &nets(&["10.0.0.0/8"]),
            XFF,
        );
        assert_eq!(got, ip("10.0.0.1"));
    }

    #[test]
    fn the_forwarded_header_is_read_only_when_configured() {
        let mut h = headers(
            "forwarded",
            &["for=192.0.2.60;proto=http, for=\"[2001:db8:cafe::17]:4711\""],
        );
        h.append("x-forwarded-for", HeaderValue::from_static("1.1.1.1"));
        let trusted = nets(&["10.0.0.0/8"]);
        let got = client_address(ip("10.0.0.1"), &h, &trusted, ForwardedHeader::Forwarded);
        assert_eq!(got, ip("2001:db8:cafe::17"));
        let got = client_address(ip("10.0.0.1"), &h, &trusted, XFF);
        assert_eq!(got, ip("1.1.1.1"));
    }

    #[test]
    fn a_hop_that_is_no_address_ends_the_walk_at_the_proxy_that_wrote_it() {
        let h = headers("forwarded", &["for=192.0.2.60, for=unknown, for=10.0.0.7"]);
        let got = client_address(
            ip("10.0.0.1"),
            &h,
            &nets(&["10.0.0.0/8"]),
            ForwardedHeader::Forwarded,
        );
        assert_eq!(got, ip("10.0.0.7"));
    }
}
