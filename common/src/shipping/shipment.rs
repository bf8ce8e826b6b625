//! The shipment: carrier and tracking, taken only with the move to `SHIPPED`, whole.

use super::errors::{Errors, FieldErrors};
use crate::domain::OrderStatus;
use serde::{Deserialize, Serialize};

/// Bounds of a shipment, in characters.
pub const MAX_CARRIER_CHARS: usize = 100;
pub const MAX_TRACKING_NUMBER_CHARS: usize = 100;
pub const MAX_TRACKING_URL_CHARS: usize = 2000;

/// How an order travels once shipped: given with the move to `SHIPPED`, shown on the order
/// and carried in its `SHIPPED` status event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Shipment {
    /// Who carries the parcel (1 to 100 characters).
    #[schema(min_length = 1, max_length = 100, example = "UPS")]
    pub carrier: String,
    /// The carrier's tracking number (1 to 100 characters).
    #[schema(min_length = 1, max_length = 100, example = "1Z999AA10123456784")]
    pub tracking_number: String,
    /// Where to follow the parcel: an `http` or `https` URL (at most 2000 characters).
    #[schema(
        max_length = 2000,
        example = "https://carrier.example/track/1Z999AA10123456784"
    )]
    pub tracking_url: Option<String>,
}

/// The shipment fields of a status change (`carrier`, `tracking_number`, `tracking_url`),
/// checked against its target: only a move to `SHIPPED` takes them, and then the carrier and
/// the tracking number come together or not at all, a tracking URL only with them. `None`
/// when none is given.
pub fn shipment(
    to: OrderStatus,
    carrier: Option<&str>,
    tracking_number: Option<&str>,
    tracking_url: Option<&str>,
) -> Result<Option<Shipment>, FieldErrors> {
    let mut errors = Errors::new("");
    let given = [
        ("carrier", carrier),
        ("tracking_number", tracking_number),
        ("tracking_url", tracking_url),
    ];
    if given.iter().all(|(_, v)| v.is_none()) {
        return Ok(None);
    }
    if to != OrderStatus::Shipped {
        for (field, value) in given {
            if value.is_some() {
                errors.add(
                    field,
                    format!("only a move to SHIPPED takes it, not to {to}"),
                );
            }
        }
        return Err(errors.0);
    }
    let required_with = if tracking_url.is_some() {
        "tracking_url"
    } else if carrier.is_some() {
        "carrier"
    } else {
        "tracking_number"
    };
    let need = |errors: &mut Errors, field: &str, value: Option<&str>, max: usize| match value {
        Some(v) => errors.required(field, v, max),
        None => {
            errors.add(
                field,
                format!("required with {required_with}: carrier and tracking_number come together"),
            );
            None
        }
    };
    let carrier = need(&mut errors, "carrier", carrier, MAX_CARRIER_CHARS);
    let number = need(
        &mut errors,
        "tracking_number",
        tracking_number,
        MAX_TRACKING_NUMBER_CHARS,
    );
    let url = errors
        .optional("tracking_url", tracking_url, MAX_TRACKING_URL_CHARS)
        .map(|url| {
            url.filter(|u| match web_url(u) {
                Ok(()) => true,
                Err(message) => {
                    errors.add("tracking_url", message);
                    false
                }
            })
        });
    match (carrier, number, url) {
        (Some(carrier), Some(tracking_number), Some(tracking_url)) if errors.0.is_empty() => {
            Ok(Some(Shipment {
                carrier,
                tracking_number,
                tracking_url,
            }))
        }
        _ => Err(errors.0),
    }
}

/// An absolute `http` or `https` URL with a host and no credentials.
fn web_url(raw: &str) -> Result<(), &'static str> {
    let url = url::Url::parse(raw).map_err(|_| "must be an absolute http or https URL")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(errors: &FieldErrors) -> Vec<&str> {
        errors.iter().map(|(f, _)| f.as_str()).collect()
    }

    #[test]
    fn shipment_fields_go_only_with_shipped_and_together() {
        use OrderStatus::*;
        assert_eq!(shipment(Shipped, None, None, None), Ok(None));
        assert_eq!(shipment(Delivered, None, None, None), Ok(None));
        let full = shipment(
            Shipped,
            Some(" UPS "),
            Some("1Z9"),
            Some("https://ups.example/t/1Z9"),
        );
        assert_eq!(
            full,
            Ok(Some(Shipment {
                carrier: "UPS".into(),
                tracking_number: "1Z9".into(),
                tracking_url: Some("https://ups.example/t/1Z9".into()),
            }))
        );
        let on_delivered = shipment(Delivered, Some("UPS"), Some("1Z9"), None).unwrap_err();
        assert_eq!(fields(&on_delivered), vec!["carrier", "tracking_number"]);
        let alone = shipment(Shipped, Some("UPS"), None, None).unwrap_err();
        assert_eq!(fields(&alone), vec!["tracking_number"]);
        let url_only = shipment(Shipped, None, None, Some("https://t.example")).unwrap_err();
        assert_eq!(fields(&url_only), vec!["carrier", "tracking_number"]);
    }

    #[test]
    fn a_tracking_url_must_be_http_or_https_with_a_host() {
        for bad in [
            "ftp://ups.example/t",
            "javascript:alert(1)",
            "ups.example/t",
            "https://user:secret@ups.example/t",
        ] {
            let errors =
                shipment(OrderStatus::Shipped, Some("UPS"), Some("1"), Some(bad)).unwrap_err();
            assert_eq!(fields(&errors), vec!["tracking_url"], "{bad}");
        }
        let long = format!("https://ups.example/{}", "t".repeat(MAX_TRACKING_URL_CHARS));
        assert!(shipment(OrderStatus::Shipped, Some("UPS"), Some("1"), Some(&long)).is_err());
        assert!(
            shipment(
                OrderStatus::Shipped,
                Some("UPS"),
                Some("1"),
                Some("http://ups.example")
            )
            .is_ok()
        );
    }
}
