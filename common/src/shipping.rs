//! Shipping: the address an order goes to (a snapshot taken at placement) and the shipment
//! that carries it there (carrier and tracking, given when the order becomes `SHIPPED`).
//! Both are checked here: an address once, by [`Address`], which a place command carries; a
//! shipment by [`shipment`], against the move it comes with. Checks name each field at
//! fault, as `(field, message)` pairs.

mod address;
mod shipment;

pub use address::{
    Address, MAX_ADDRESS_LINE_CHARS, MAX_ADDRESS_NAME_CHARS, MAX_CITY_CHARS, MAX_PHONE_CHARS,
    MAX_POSTAL_CODE_CHARS, MAX_REGION_CHARS, ShippingAddress, country_code,
};
pub use shipment::{
    MAX_CARRIER_CHARS, MAX_TRACKING_NUMBER_CHARS, MAX_TRACKING_URL_CHARS, Shipment, shipment,
};

/// Field errors: the path of each bad field and what is wrong with it.
pub type FieldErrors = Vec<(String, String)>;

/// Joins field errors into one line, for a dead letter's reason.
pub fn describe(errors: &[(String, String)]) -> String {
    errors
        .iter()
        .map(|(field, message)| format!("{field}: {message}"))
        .collect::<Vec<_>>()
        .join("; ")
}

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
