//! Where a webhook may be sent: https URLs whose addresses are public. The api checks an
//! endpoint's URL when it is created or changed (its host resolved); the webhooks worker checks
//! again, on every attempt, the addresses it actually connects to. A deployment that sets
//! `WEBHOOK_ALLOW_PRIVATE_NETWORKS` (development and tests only) may use http and any address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::Url;

/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2000;

/// Why a URL may not be a webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("not a valid absolute URL ({0})")]
    Malformed(String),
    #[error("must be https")]
    NotHttps,
    #[error("must not carry a user name or password")]
    Credentials,
    #[error("at most {MAX_URL_LEN} characters")]
    TooLong,
    #[error("{host} resolves to {address}, a {kind} address")]
    Address {
        host: String,
        address: IpAddr,
        kind: &'static str,
    },
    #[error("{0} does not resolve")]
    Unresolvable(String),
}

/// Parses and checks what can be checked without a name lookup: the scheme, no credentials,
/// the length, and an address written in the URL itself.
pub fn check_url(raw: &str, allow_private: bool) -> Result<Url, Refusal> {
    if raw.chars().count() > MAX_URL_LEN {
        return Err(Refusal::TooLong);
    }
    let url = Url::parse(raw).map_err(|e| Refusal::Malformed(e.to_string()))?;
    let allowed_scheme = url.scheme() == "https" || (allow_private && url.scheme() == "http");
    if !allowed_scheme {
        return Err(Refusal::NotHttps);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refusal::Credentials);
    }
    let host = match url.host() {
        Some(host) => host,
        None => return Err(Refusal::Malformed("no host".into())),
    };
    if !allow_private {
        let literal = match host {
            url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
            url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
            url::Host::Domain(_) => None,
        };
        if let Some(address) = literal {
            refuse_address(&host.to_string(), address)?;
        }
    }
    Ok(url)
}

/// Refuses `address` of `host` when it is not a public one.
pub fn refuse_address(host: &str, address: IpAddr) -> Result<(), Refusal> {
    match forbidden_address(address) {
        Some(kind) => Err(Refusal::Address {
            host: host.to_owned(),
            address,
            kind,
        }),
        None => Ok(()),
    }
}

/// Resolves the URL's host and refuses it if any of its addresses is not public (the worker
/// would refuse that address, and DNS may hand out any of them).
pub async fn check_resolved(url: &Url, allow_private: bool) -> Result<(), Refusal> {
    let Some(url::Host::Domain(name)) = url.host() else {
        return Ok(());
    };
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses: Vec<IpAddr> = tokio::net::lookup_host((name, port))
        .await
        .map_err(|_| Refusal::Unresolvable(name.to_owned()))?
        .map(|a| a.ip())
        .collect();
    if addresses.is_empty() {
        return Err(Refusal::Unresolvable(name.to_owned()));
    }
    if !allow_private {
        for address in addresses {
            refuse_address(name, address)?;
        }
    }
    Ok(())
}

/// What kind of non-public address `address` is, or `None` for a public one. Addresses that
/// embed an IPv4 address (IPv4-mapped, NAT64, 6to4) are judged by it.
pub fn forbidden_address(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

/// Instance metadata services of the clouds (AWS, GCP, Azure, OpenStack: 169.254.169.254; AWS
/// ECS: 169.254.170.2; Alibaba: 100.100.100.200; Oracle: 192.0.0.192).
const METADATA_V4: [Ipv4Addr; 4] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(100, 100, 100, 200),
    Ipv4Addr::new(192, 0, 0, 192),
];
/// AWS's IPv6 instance metadata service.
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

fn forbidden_v4(v4: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = v4.octets();
    if METADATA_V4.contains(&v4) {
        Some("cloud metadata")
    } else if v4.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if v4.is_loopback() {
        Some("loopback")
    } else if v4.is_private() || (a == 100 && (64..128).contains(&b)) || (a == 192 && b == 0) {
        // 100.64.0.0/10 is carrier-grade NAT; 192.0.0.0/24 the IETF's protocol assignments.
        Some("private")
    } else if v4.is_link_local() {
        Some("link-local")
    } else if v4.is_multicast() {
        Some("multicast")
    } else if v4.is_broadcast() || a >= 240 {
        Some("reserved")
    } else {
        None
    }
}

fn forbidden_v6(v6: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    let segments = v6.segments();
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address a gateway connects to.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., hi, lo] = segments;
        return forbidden_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    }
    if segments[0] == 0x2002 {
        return forbidden_v4(Ipv4Addr::from(
            (u32::from(segments[1]) << 16) | u32::from(segments[2]),
        ));
    }
    if v6 == METADATA_V6 {
        Some("cloud metadata")
    } else if v6.is_unspecified() {
        Some("unspecified")
    } else if v6.is_loopback() {
        Some("loopback")
    } else if v6.is_unique_local() {
        Some("private")
    } else if v6.is_unicast_link_local() || segments[0] & 0xffc0 == 0xfec0 {
        // fec0::/10, the deprecated site-local addresses, are private too.
        Some("link-local")
    } else if v6.is_multicast() {
        Some("multicast")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(address: &str) -> Option<&'static str> {
        forbidden_address(address.parse().expect("an address"))
    }

    #[test]
    fn every_kind_of_non_public_address_is_named() {
        for (address, expected) in [
            ("169.254.169.254", "cloud metadata"),
            ("fd00:ec2::254", "cloud metadata"),
            ("100.100.100.200", "cloud metadata"),
            ("0.0.0.0", "unspecified"),
            ("::", "unspecified"),
            ("127.0.0.1", "loopback"),
            ("127.8.9.10", "loopback"),
            ("::1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "private"),
            ("fc00::1", "private"),
            ("169.254.1.1", "link-local"),
            ("fe80::1", "link-local"),
            ("224.0.0.1", "multicast"),
            ("ff02::1", "multicast"),
            ("255.255.255.255", "reserved"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "cloud metadata"),
            ("64:ff9b::a00:1", "private"),
            ("2002:c0a8:101::1", "private"),
        ] {
            assert_eq!(kind(address), Some(expected), "{address}");
        }
        for public in [
            "93.184.215.14",
            "8.8.8.8",
            "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
        ] {
            assert_eq!(kind(public), None, "{public}");
        }
    }

    #[test]
    fn a_url_must_be_https_without_credentials_and_its_literal_address_public() {
        assert!(check_url("https://hooks.example.com/in", false).is_ok());
        assert_eq!(
            check_url("http://hooks.example.com/in", false),
            Err(Refusal::NotHttps)
        );
        assert_eq!(
            check_url("https://user:pw@hooks.example.com/", false),
            Err(Refusal::Credentials)
        );
        assert!(matches!(
            check_url("https://[::1]:8443/", false),
            Err(Refusal::Address {
                kind: "loopback",
                ..
            })
        ));
        assert!(matches!(
            check_url("https://2130706433/", false),
            Err(Refusal::Address {
                kind: "loopback",
                ..
            })
        ));
        assert!(matches!(
            check_url("hooks.example.com", false),
            Err(Refusal::Malformed(_))
        ));
        assert!(
            check_url("http://127.0.0.1:8080/", true).is_ok(),
            "allowed in development"
        );
    }
}
