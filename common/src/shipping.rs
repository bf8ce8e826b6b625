//! Shipping: the address an order goes to (a snapshot taken at placement) and the shipment
//! that carries it there (carrier and tracking, given when the order becomes `SHIPPED`).
//! Both are checked here, by the api and again by the workers, since other systems publish
//! commands too. Checks name each field at fault, as `(field, message)` pairs.

use crate::domain::OrderStatus;
use serde::{Deserialize, Serialize};

/// Bounds of a shipping address, in characters.
pub const MAX_ADDRESS_NAME_CHARS: usize = 200;
pub const MAX_ADDRESS_LINE_CHARS: usize = 200;
pub const MAX_CITY_CHARS: usize = 100;
pub const MAX_REGION_CHARS: usize = 100;
pub const MAX_POSTAL_CODE_CHARS: usize = 20;
pub const MAX_PHONE_CHARS: usize = 32;
/// Bounds of a shipment, in characters.
pub const MAX_CARRIER_CHARS: usize = 100;
pub const MAX_TRACKING_NUMBER_CHARS: usize = 100;
pub const MAX_TRACKING_URL_CHARS: usize = 2000;

/// Field errors: the path of each bad field and what is wrong with it.
pub type FieldErrors = Vec<(String, String)>;

/// Where an order is shipped to, as the customer gave it at placement. The order keeps this
/// snapshot; later changes to the customer's details never alter it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Ada Lovelace", "line1": "12 St James's Square", "line2": null,
    "city": "London", "region": null, "postal_code": "SW1Y 4JH", "country": "GB",
    "phone": "+44 20 7946 0000"}))]
pub struct ShippingAddress {
    /// The recipient (1 to 200 characters).
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Street and number (1 to 200 characters).
    #[schema(min_length = 1, max_length = 200)]
    pub line1: String,
    /// Flat, floor, building (at most 200 characters).
    #[schema(max_length = 200)]
    pub line2: Option<String>,
    /// 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub city: String,
    /// State, province or county (at most 100 characters).
    #[schema(max_length = 100)]
    pub region: Option<String>,
    /// 1 to 20 letters, digits, spaces and hyphens.
    #[schema(min_length = 1, max_length = 20)]
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 code of an assigned country (`GB`, `US`, `DE`); lower case is
    /// accepted and stored upper case.
    #[schema(min_length = 2, max_length = 2, example = "GB")]
    pub country: String,
    /// Digits, spaces, `-`, `(`, `)`, `.` and an optional leading `+`: 4 to 15 digits, at
    /// most 32 characters.
    #[schema(max_length = 32)]
    pub phone: Option<String>,
}

impl ShippingAddress {
    /// The address as stored: every text trimmed, blank optional fields dropped, the country
    /// upper case. Or every field at fault, named under `prefix` (`shipping_address.country`).
    pub fn normalised(&self, prefix: &str) -> Result<ShippingAddress, FieldErrors> {
        let mut errors = Errors::new(prefix);
        let name = errors.required("name", &self.name, MAX_ADDRESS_NAME_CHARS);
        let line1 = errors.required("line1", &self.line1, MAX_ADDRESS_LINE_CHARS);
        let line2 = errors.optional("line2", self.line2.as_deref(), MAX_ADDRESS_LINE_CHARS);
        let city = errors.required("city", &self.city, MAX_CITY_CHARS);
        let region = errors.optional("region", self.region.as_deref(), MAX_REGION_CHARS);
        let postal_code = errors
            .required("postal_code", &self.postal_code, MAX_POSTAL_CODE_CHARS)
            .filter(|code| {
                let fits = code
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-');
                if !fits {
                    errors.add("postal_code", "may hold only letters, digits, spaces and -");
                }
                fits
            });
        let country = country_code(self.country.trim());
        if country.is_none() {
            errors.add(
                "country",
                "must be the ISO 3166-1 alpha-2 code of a country (GB, US, DE, …)",
            );
        }
        let phone = errors
            .optional("phone", self.phone.as_deref(), MAX_PHONE_CHARS)
            .map(|phone| {
                phone.filter(|p| {
                    let fits = is_phone_number(p);
                    if !fits {
                        errors.add(
                            "phone",
                            "must be 4 to 15 digits, with spaces, - ( ) . and a leading + allowed",
                        );
                    }
                    fits
                })
            });
        match (
            name,
            line1,
            line2,
            city,
            region,
            postal_code,
            country,
            phone,
        ) {
            (
                Some(name),
                Some(line1),
                Some(line2),
                Some(city),
                Some(region),
                Some(postal_code),
                Some(country),
                Some(phone),
            ) if errors.0.is_empty() => Ok(ShippingAddress {
                name,
                line1,
                line2,
                city,
                region,
                postal_code,
                country: country.to_owned(),
                phone,
            }),
            _ => Err(errors.0),
        }
    }
}

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

/// Joins field errors into one line, for a dead letter's reason.
pub fn describe(errors: &[(String, String)]) -> String {
    errors
        .iter()
        .map(|(field, message)| format!("{field}: {message}"))
        .collect::<Vec<_>>()
        .join("; ")
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

fn is_phone_number(phone: &str) -> bool {
    let rest = phone.strip_prefix('+').unwrap_or(phone);
    let digits = rest.chars().filter(char::is_ascii_digit).count();
    (4..=15).contains(&digits)
        && rest
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')' | '.'))
}

/// The upper-case code, if `raw` is an assigned ISO 3166-1 alpha-2 code in either case.
pub fn country_code(raw: &str) -> Option<&'static str> {
    let upper = raw.to_ascii_uppercase();
    COUNTRIES
        .binary_search(&upper.as_str())
        .ok()
        .map(|i| COUNTRIES[i])
}

/// The 249 officially assigned ISO 3166-1 alpha-2 codes, sorted (user-assigned codes such as
/// `XK`, and reserved ones such as `UK`, are not countries of the standard).
const COUNTRIES: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// Collects field errors under a prefix.
struct Errors<'p>(FieldErrors, &'p str);

impl<'p> Errors<'p> {
    fn new(prefix: &'p str) -> Self {
        Errors(Vec::new(), prefix)
    }

    fn add(&mut self, field: &str, message: impl Into<String>) {
        let path = if self.1.is_empty() {
            field.to_owned()
        } else {
            format!("{}.{field}", self.1)
        };
        self.0.push((path, message.into()));
    }

    /// A text that must be there: trimmed, 1 to `max` characters, no control characters.
    fn required(&mut self, field: &str, raw: &str, max: usize) -> Option<String> {
        let text = raw.trim();
        let chars = text.chars().count();
        if chars == 0 || chars > max {
            self.add(field, format!("must be 1 to {max} characters"));
            None
        } else if text.chars().any(char::is_control) {
            self.add(
                field,
                "must not contain control characters (line breaks, tabs)",
            );
            None
        } else {
            Some(text.to_owned())
        }
    }

    /// A text that may be absent: blank is absent; otherwise as [`Errors::required`].
    /// `None` when it is at fault.
    fn optional(&mut self, field: &str, raw: Option<&str>, max: usize) -> Option<Option<String>> {
        match raw.map(str::trim).filter(|t| !t.is_empty()) {
            None => Some(None),
            Some(text) => self.required(field, text, max).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address() -> ShippingAddress {
        ShippingAddress {
            name: " Ada Lovelace ".into(),
            line1: "12 St James's Square".into(),
            line2: Some("  ".into()),
            city: "London".into(),
            region: None,
            postal_code: "SW1Y 4JH".into(),
            country: "gb".into(),
            phone: Some("+44 (20) 7946-0000".into()),
        }
    }

    fn fields(errors: &FieldErrors) -> Vec<&str> {
        errors.iter().map(|(f, _)| f.as_str()).collect()
    }

    #[test]
    fn the_country_list_is_sorted_and_holds_only_two_capital_letters() {
        assert!(COUNTRIES.windows(2).all(|w| w[0] < w[1]));
        assert!(
            COUNTRIES
                .iter()
                .all(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
        );
        assert_eq!(country_code("de"), Some("DE"));
        assert_eq!(country_code("UK"), None);
        assert_eq!(country_code("XX"), None);
        assert_eq!(country_code("GBR"), None);
    }

    #[test]
    fn a_valid_address_is_trimmed_and_its_country_upper_cased() {
        let stored = address().normalised("shipping_address").expect("valid");
        assert_eq!(stored.name, "Ada Lovelace");
        assert_eq!(stored.line2, None, "a blank optional line is absent");
        assert_eq!(stored.country, "GB");
        assert_eq!(stored.normalised("shipping_address"), Ok(stored.clone()));
    }

    #[test]
    fn every_bad_field_of_an_address_is_named() {
        let bad = ShippingAddress {
            name: "".into(),
            line1: "x".repeat(MAX_ADDRESS_LINE_CHARS + 1),
            line2: Some("a\nb".into()),
            city: " ".into(),
            region: Some("r".repeat(MAX_REGION_CHARS + 1)),
            postal_code: "SW1<".into(),
            country: "UK".into(),
            phone: Some("call me".into()),
        };
        let errors = bad.normalised("shipping_address").unwrap_err();
        assert_eq!(
            fields(&errors),
            vec![
                "shipping_address.name",
                "shipping_address.line1",
                "shipping_address.line2",
                "shipping_address.city",
                "shipping_address.region",
                "shipping_address.postal_code",
                "shipping_address.country",
                "shipping_address.phone",
            ]
        );
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
