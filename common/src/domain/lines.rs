//! The lines of an order: a list of distinct products, each with a [`Quantity`], checked once
//! by [`Lines::new`]. A message's decoding goes through it (serde `try_from`); an HTTP body's
//! lines, where a product may be listed twice, are merged first ([`Lines::merging`]).

use super::bounds::{MAX_LINE_QUANTITY, MAX_ORDER_LINES};
use crate::money::Quantity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// One line of an order request: which product and how many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineRequest {
    pub product_id: Uuid,
    #[schema(minimum = 1, maximum = 10000)]
    pub quantity: i32,
}

/// One line of an order, checked: a product and a [`Quantity`] of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    pub product_id: Uuid,
    pub quantity: Quantity,
}

impl From<Line> for LineRequest {
    fn from(line: Line) -> Self {
        LineRequest {
            product_id: line.product_id,
            quantity: line.quantity.get(),
        }
    }
}

/// The lines of an order: 1 to [`MAX_ORDER_LINES`] distinct products, sorted by product id
/// (the order rows are locked in), each quantity 1 to [`MAX_LINE_QUANTITY`]. JSON carries the
/// list of `{product_id, quantity}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Line>", into = "Vec<Line>")]
pub struct Lines(Vec<Line>);

impl Lines {
    /// `lines` sorted by product, if there are 1 to [`MAX_ORDER_LINES`] and no product is
    /// listed twice; otherwise why not.
    pub fn new(mut lines: Vec<Line>) -> Result<Self, String> {
        if lines.is_empty() {
            return Err(too_few());
        }
        if lines.len() > MAX_ORDER_LINES {
            return Err(too_many(lines.len()));
        }
        lines.sort_by_key(|line| line.product_id);
        if let Some(twice) = lines
            .windows(2)
            .find(|w| w[0].product_id == w[1].product_id)
        {
            return Err(format!(
                "product {} is listed twice; each product takes one line",
                twice[0].product_id
            ));
        }
        Ok(Lines(lines))
    }

    /// The lines of an HTTP request: repeated products merged into one line, then checked as
    /// [`Lines::new`] does. Or every fault, named by its path (`items[2].quantity`, `items`).
    pub fn merging(requested: &[LineRequest]) -> Result<Self, Vec<(String, String)>> {
        let mut errors = Vec::new();
        if requested.is_empty() {
            errors.push(("items".to_owned(), too_few()));
        }
        for (i, line) in requested.iter().enumerate() {
            if let Err(e) = Quantity::new(i64::from(line.quantity)) {
                errors.push((format!("items[{i}].quantity"), e));
            }
        }
        let mut merged: BTreeMap<Uuid, i64> = BTreeMap::new();
        for line in requested {
            *merged.entry(line.product_id).or_default() += i64::from(line.quantity);
        }
        let mut lines = Vec::with_capacity(merged.len());
        for (&product_id, &quantity) in &merged {
            match Quantity::new(quantity) {
                Ok(quantity) => lines.push(Line {
                    product_id,
                    quantity,
                }),
                Err(_) if errors.is_empty() => errors.push((
                    "items".to_owned(),
                    format!(
                        "product {product_id} is ordered {quantity} times in total; at most {MAX_LINE_QUANTITY}"
                    ),
                )),
                Err(_) => {}
            }
        }
        if merged.len() > MAX_ORDER_LINES {
            errors.push(("items".to_owned(), too_many(merged.len())));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Lines::new(lines).map_err(|e| vec![("items".to_owned(), e)])
    }

    pub fn as_slice(&self) -> &[Line] {
        &self.0
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Line> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true: an order has at least one line.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn too_few() -> String {
    "an order needs at least one line".to_owned()
}

fn too_many(count: usize) -> String {
    format!("at most {MAX_ORDER_LINES} distinct products per order, got {count}")
}

impl TryFrom<Vec<Line>> for Lines {
    type Error = String;
    fn try_from(lines: Vec<Line>) -> Result<Self, Self::Error> {
        Lines::new(lines)
    }
}

impl From<Lines> for Vec<Line> {
    fn from(lines: Lines) -> Vec<Line> {
        lines.0
    }
}

impl std::ops::Deref for Lines {
    type Target = [Line];
    fn deref(&self) -> &[Line] {
        &self.0
    }
}

impl<'a> IntoIterator for &'a Lines {
    type Item = &'a Line;
    type IntoIter = std::slice::Iter<'a, Line>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: u128, quantity: i32) -> LineRequest {
        LineRequest {
            product_id: Uuid::from_u128(id),
            quantity,
        }
    }

    fn checked(id: u128, quantity: i64) -> Line {
        Line {
            product_id: Uuid::from_u128(id),
            quantity: Quantity::new(quantity).expect("valid"),
        }
    }

    #[test]
    fn repeated_products_are_merged_and_sorted_by_id() {
        let lines = Lines::merging(&[line(2, 1), line(1, 2), line(2, 3)]).expect("valid");
        let lines: Vec<LineRequest> = lines.iter().copied().map(LineRequest::from).collect();
        assert_eq!(lines, vec![line(1, 2), line(2, 4)]);
    }

    #[test]
    fn merging_names_each_fault_by_its_path() {
        let errors = Lines::merging(&[line(1, 0), line(2, 10_001)]).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, vec!["items[0].quantity", "items[1].quantity"]);
        let empty = Lines::merging(&[]).unwrap_err();
        assert_eq!(
            empty,
            vec![("items".into(), "an order needs at least one line".into())]
        );
        let many: Vec<LineRequest> = (0..101).map(|i| line(i, 1)).collect();
        assert!(Lines::merging(&many).is_err());
        let most: Vec<LineRequest> = (0..100).map(|i| line(i, 1)).collect();
        assert_eq!(Lines::merging(&most).map(|l| l.len()), Ok(MAX_ORDER_LINES));
        let over = Lines::merging(&[line(1, 6000), line(1, 6000)]).unwrap_err();
        assert_eq!(over[0].0, "items");
    }

    #[test]
    fn lines_are_one_to_the_maximum_distinct_products() {
        assert_eq!(
            Lines::new(vec![]),
            Err("an order needs at least one line".into())
        );
        let most: Vec<Line> = (0..MAX_ORDER_LINES as u128)
            .map(|i| checked(i, 1))
            .collect();
        assert_eq!(Lines::new(most).map(|l| l.len()), Ok(MAX_ORDER_LINES));
        let over: Vec<Line> = (0..=MAX_ORDER_LINES as u128)
            .map(|i| checked(i, 1))
            .collect();
        assert!(Lines::new(over).is_err());
        let twice = Lines::new(vec![checked(1, 1), checked(2, 1), checked(1, 2)]).unwrap_err();
        assert!(twice.contains("listed twice"), "{twice}");
        let sorted = Lines::new(vec![checked(3, 1), checked(1, 2)]).expect("valid");
        assert_eq!(sorted.as_slice(), &[checked(1, 2), checked(3, 1)]);
    }

    #[test]
    fn json_carries_the_list_and_refuses_a_bad_one_naming_the_rule() {
        let json = serde_json::json!([
            {"product_id": Uuid::from_u128(2), "quantity": 1},
            {"product_id": Uuid::from_u128(1), "quantity": 10_000},
        ]);
        let lines: Lines = serde_json::from_value(json).expect("valid");
        assert_eq!(lines.as_slice(), &[checked(1, 10_000), checked(2, 1)]);
        let back: Lines = serde_json::from_value(serde_json::to_value(&lines).expect("encodes"))
            .expect("decodes");
        assert_eq!(back, lines);
        let refused = |json: serde_json::Value| {
            serde_json::from_value::<Lines>(json)
                .expect_err("refused")
                .to_string()
        };
        assert!(refused(serde_json::json!([])).contains("at least one line"));
        let zero = refused(serde_json::json!([{"product_id": Uuid::nil(), "quantity": 0}]));
        assert!(zero.contains("must be between 1 and 10000"), "{zero}");
        let twice = refused(serde_json::json!([
            {"product_id": Uuid::nil(), "quantity": 1},
            {"product_id": Uuid::nil(), "quantity": 2},
        ]));
        assert!(twice.contains("listed twice"), "{twice}");
    }
}
