//! The shipping address: its fields, their bounds, and the countries of ISO 3166-1.

use super::errors::{Errors, FieldErrors};
use serde::{Deserialize, Serialize};

/// Bounds of a shipping address, in characters.
pub const MAX_ADDRESS_NAME_CHARS: usize = 200;
pub const MAX_ADDRESS_LINE_CHARS: usize = 200;
pub const MAX_CITY_CHARS: usize = 100;
pub const MAX_REGION_CHARS: usize = 100;
pub const MAX_POSTAL_CODE_CHARS: usize = 20;
pub const MAX_PHONE_CHARS: usize = 32;

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

/// A shipping address as stored, checked once ([`ShippingAddress::normalised`]): every text
/// trimmed and within its bounds, blank optional fields absent, the country an assigned ISO
/// 3166-1 code in upper case. A message's decoding goes through it (serde `try_from`), naming
/// each field at fault; JSON carries the address's fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ShippingAddress", into = "ShippingAddress")]
pub struct Address(ShippingAddress);

impl Address {
    /// `address` normalised, or every field at fault, named under `prefix`
    /// (`shipping_address.country`).
    pub fn new(address: &ShippingAddress, prefix: &str) -> Result<Self, FieldErrors> {
        address.normalised(prefix).map(Address)
    }
}

impl TryFrom<ShippingAddress> for Address {
    type Error = String;
    fn try_from(address: ShippingAddress) -> Result<Self, Self::Error> {
        Address::new(&address, "").map_err(|errors| super::errors::describe(&errors))
    }
}

impl From<Address> for ShippingAddress {
    fn from(address: Address) -> ShippingAddress {
        address.0
    }
}

impl std::ops::Deref for Address {
    type Target = ShippingAddress;
    fn deref(&self) -> &ShippingAddress {
        &self.0
    }
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
    fn an_address_decodes_normalised_and_a_bad_one_is_refused_naming_its_fields() {
        let json = serde_json::to_value(address()).expect("encodes");
        let decoded: Address = serde_json::from_value(json).expect("valid");
        assert_eq!(decoded.country, "GB");
        assert_eq!(decoded.name, "Ada Lovelace");
        let back: Address =
            serde_json::from_value(serde_json::to_value(&decoded).expect("encodes"))
                .expect("decodes");
        assert_eq!(back, decoded);
        let mut bad = serde_json::to_value(address()).expect("encodes");
        bad["country"] = "UK".into();
        bad["city"] = "".into();
        let refused = serde_json::from_value::<Address>(bad)
            .expect_err("refused")
            .to_string();
        assert!(
            refused.starts_with("city: must be 1 to 100 characters; country: must be"),
            "{refused}"
        );
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
}
