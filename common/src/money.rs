//! Money, currency and quantity, each checked once, by its constructor. An HTTP body's
//! validator, a message's decoding (serde `try_from`) and the configuration all go through
//! it, so everything past the edge holds a valid value and never checks it again. JSON and
//! SQL see the bare number or code.

use crate::domain::bounds::MAX_LINE_QUANTITY;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The most money accepted in one amount, in minor units (10 billion in major units): far
/// above any real price or payment, and low enough that order totals cannot overflow.
pub const MAX_MONEY: i64 = 1_000_000_000_000;

/// An amount of money in minor units of its currency (cents for USD): 0 to [`MAX_MONEY`].
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    sqlx::Type,
)]
#[serde(try_from = "i64", into = "i64")]
#[sqlx(transparent)]
pub struct Money(i64);

impl Money {
    pub const ZERO: Money = Money(0);

    /// `minor_units`, if it is 0 to [`MAX_MONEY`]; otherwise why not.
    pub fn new(minor_units: i64) -> Result<Self, String> {
        if minor_units < 0 {
            Err("must not be negative".to_owned())
        } else if minor_units > MAX_MONEY {
            Err(format!("must be at most {MAX_MONEY}"))
        } else {
            Ok(Money(minor_units))
        }
    }

    pub fn minor_units(self) -> i64 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl TryFrom<i64> for Money {
    type Error = String;
    fn try_from(minor_units: i64) -> Result<Self, Self::Error> {
        Money::new(minor_units)
    }
}

impl From<Money> for i64 {
    fn from(money: Money) -> i64 {
        money.0
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An ISO 4217 currency code: three upper-case letters (`EUR`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(try_from = "String", into = "String")]
#[sqlx(transparent)]
pub struct Currency(String);

impl Currency {
    /// `code`, if it has the form of an ISO 4217 code; otherwise why not.
    pub fn new(code: &str) -> Result<Self, String> {
        if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Currency(code.to_owned()))
        } else {
            Err(format!(
                "must be an ISO 4217 code of three upper-case letters, not {code:?}"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Currency {
    type Error = String;
    fn try_from(code: String) -> Result<Self, Self::Error> {
        Currency::new(&code)
    }
}

impl From<Currency> for String {
    fn from(currency: Currency) -> String {
        currency.0
    }
}

impl PartialEq<str> for Currency {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Currency {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How many of a product one order line takes: 1 to [`MAX_LINE_QUANTITY`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, sqlx::Type,
)]
#[serde(try_from = "i64", into = "i32")]
#[sqlx(transparent)]
pub struct Quantity(i32);

impl Quantity {
    /// `count`, if it is 1 to [`MAX_LINE_QUANTITY`]; otherwise why not.
    pub fn new(count: i64) -> Result<Self, String> {
        match i32::try_from(count) {
            Ok(n) if (1..=MAX_LINE_QUANTITY).contains(&n) => Ok(Quantity(n)),
            _ => Err(format!("must be between 1 and {MAX_LINE_QUANTITY}")),
        }
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

impl TryFrom<i64> for Quantity {
    type Error = String;
    fn try_from(count: i64) -> Result<Self, Self::Error> {
        Quantity::new(count)
    }
}

impl From<Quantity> for i32 {
    fn from(quantity: Quantity) -> i32 {
        quantity.0
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_zero_to_the_maximum_in_minor_units() {
        assert_eq!(Money::new(0), Ok(Money::ZERO));
        assert_eq!(Money::new(MAX_MONEY).map(Money::minor_units), Ok(MAX_MONEY));
        assert_eq!(Money::new(-1), Err("must not be negative".to_owned()));
        assert_eq!(
            Money::new(MAX_MONEY + 1),
            Err(format!("must be at most {MAX_MONEY}"))
        );
    }

    #[test]
    fn a_currency_is_three_upper_case_letters() {
        assert_eq!(
            Currency::new("EUR").map(|c| c.to_string()),
            Ok("EUR".into())
        );
        for bad in ["eur", "EURO", "EU", "", "E1R", "ÉUR"] {
            assert!(Currency::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_quantity_is_one_to_the_line_maximum() {
        assert_eq!(Quantity::new(1).map(Quantity::get), Ok(1));
        assert_eq!(
            Quantity::new(i64::from(MAX_LINE_QUANTITY)).map(Quantity::get),
            Ok(MAX_LINE_QUANTITY)
        );
        for bad in [0, -1, i64::from(MAX_LINE_QUANTITY) + 1, i64::MAX] {
            assert_eq!(
                Quantity::new(bad),
                Err(format!("must be between 1 and {MAX_LINE_QUANTITY}"))
            );
        }
    }

    #[test]
    fn json_carries_the_bare_value_and_refuses_a_bad_one() {
        let money: Money = serde_json::from_str("1250").expect("valid");
        assert_eq!(serde_json::to_string(&money).expect("serialises"), "1250");
        let currency: Currency = serde_json::from_str("\"USD\"").expect("valid");
        assert_eq!(
            serde_json::to_string(&currency).expect("serialises"),
            "\"USD\""
        );
        let quantity: Quantity = serde_json::from_str("3").expect("valid");
        assert_eq!(serde_json::to_string(&quantity).expect("serialises"), "3");
        let refused = serde_json::from_str::<Money>("-5").expect_err("negative");
        assert!(refused.to_string().starts_with("must not be negative"));
        assert!(serde_json::from_str::<Currency>("\"usd\"").is_err());
        assert!(serde_json::from_str::<Quantity>("0").is_err());
    }

    #[test]
    fn a_message_with_a_bad_amount_or_currency_is_refused_naming_the_field() {
        use crate::messages::PaymentSucceeded;
        use crate::messaging::decode;
        let payment = |amount: i64, currency: &str| {
            serde_json::json!({"id": uuid::Uuid::nil(), "type": "payments.succeeded",
                "version": 1, "occurred_at": "2026-01-01T00:00:00Z", "correlation_id": "c",
                "data": {"order_id": uuid::Uuid::nil(), "amount": amount, "currency": currency,
                         "provider_reference": "p"}})
            .to_string()
        };
        let paid = decode::<PaymentSucceeded>(payment(1250, "EUR").as_bytes()).expect("valid");
        assert_eq!(paid.data.amount.minor_units(), 1250);
        assert_eq!(paid.data.currency, "EUR");
        let refused = |amount, currency| {
            decode::<PaymentSucceeded>(payment(amount, currency).as_bytes())
                .expect_err("refused")
                .to_string()
        };
        let negative = refused(-1, "EUR");
        assert!(
            negative.contains("amount: must not be negative"),
            "{negative}"
        );
        let lower = refused(1250, "eur");
        assert!(
            lower.contains("currency: must be an ISO 4217 code"),
            "{lower}"
        );
    }
}
