//! The validator's rules, one table per request: each row is what a client sends and the
//! field the 422 names (or none). Bodies are decoded as the routes decode them
//! ([`crate::extract::parse_json`]), so type errors (a fractional price) are covered too.

use super::*;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

/// The fields a body is refused for, after decoding it and validating it with `validate`;
/// empty when it is accepted. A refusal that names no field is `[""]`.
fn refused<T: DeserializeOwned, U>(
    body: &Value,
    validate: impl Fn(T) -> Result<U, ApiError>,
) -> Vec<String> {
    let outcome = crate::extract::parse_json::<T>(body.to_string().as_bytes()).and_then(validate);
    match outcome {
        Ok(_) => Vec::new(),
        Err(ApiError::Validation(errors)) => errors.into_iter().map(|e| e.field).collect(),
        Err(ApiError::Unprocessable(_)) => vec![String::new()],
        Err(other) => panic!("{body}: expected a 422, got {other:?}"),
    }
}

fn cup() -> Value {
    json!({"name": "Espresso cup", "description": "Porcelain, 80 ml", "price": 1250, "stock": 40})
}

/// `cup()` with `field` set to `value`.
fn cup_with(field: &str, value: Value) -> Value {
    let mut body = cup();
    body[field] = value;
    body
}

#[test]
fn creation_refuses_each_bad_field_and_accepts_the_limits() {
    let table: &[(&str, Value, Option<&str>)] = &[
        ("name", json!(""), Some("name")),
        ("name", json!("   \t "), Some("name")),
        ("name", json!("é".repeat(NAME_MAX_CHARS + 1)), Some("name")),
        ("name", json!("é".repeat(NAME_MAX_CHARS)), None),
        ("name", json!("bell\u{7}"), Some("name")),
        (
            "description",
            json!("x".repeat(DESCRIPTION_MAX_CHARS + 1)),
            Some("description"),
        ),
        (
            "description",
            json!("x".repeat(DESCRIPTION_MAX_CHARS)),
            None,
        ),
        ("price", json!(-1), Some("price")),
        ("price", json!(12.5), Some("price")),
        ("price", json!("1250"), Some("price")),
        ("price", json!(i64::MAX), Some("price")),
        ("price", json!(common::money::MAX_MONEY), None),
        ("price", json!(0), None),
        ("stock", json!(-5), Some("stock")),
        ("stock", json!(1.5), Some("stock")),
        ("stock", json!(3_000_000_000i64), Some("stock")),
        ("stock", json!(MAX_STOCK), None),
        ("stock", json!(0), None),
    ];
    for (field, value, expected) in table {
        let body = cup_with(field, value.clone());
        let expected: Vec<String> = expected.iter().map(|f| f.to_string()).collect();
        assert_eq!(refused(&body, create), expected, "{field} = {value}");
    }
}

#[test]
fn creation_needs_a_name_and_knows_only_its_fields() {
    let missing = crate::extract::parse_json::<CreateProduct>(br#"{"price": 1}"#);
    let Err(ApiError::Validation(errors)) = missing else {
        panic!("a missing name is a 422");
    };
    assert!(errors[0].message.contains("name"), "{}", errors[0].message);

    let unknown = crate::extract::parse_json::<CreateProduct>(
        cup_with("currency", json!("EUR")).to_string().as_bytes(),
    );
    let Err(ApiError::Validation(errors)) = unknown else {
        panic!("an unknown field is a 422");
    };
    assert!(
        errors[0].message.contains("unknown field"),
        "{}",
        errors[0].message
    );

    let bare = json!({"name": "Cup", "price": 1});
    assert!(
        refused(&bare, create).is_empty(),
        "description and stock may be left out"
    );
}

#[test]
fn an_update_is_validated_like_a_creation_and_must_change_something() {
    let table: &[(Value, &[&str])] = &[
        (json!({"name": " "}), &["name"]),
        (json!({"name": "n".repeat(NAME_MAX_CHARS + 1)}), &["name"]),
        (
            json!({"description": "d".repeat(DESCRIPTION_MAX_CHARS + 1)}),
            &["description"],
        ),
        (json!({"description": null}), &["description"]),
        (json!({"price": -1}), &["price"]),
        (json!({"price": 0.5}), &["price"]),
        (json!({"stock": -1}), &["stock"]),
        (json!({"stock": 2.5}), &["stock"]),
        (json!({"initial_stock": 1}), &["initial_stock"]),
        (json!({}), &[""]),
        (json!({"price": 1}), &[]),
        (json!({"name": "Mug", "stock": 0}), &[]),
    ];
    for (body, expected) in table {
        assert_eq!(refused(body, update), *expected, "{body}");
    }
}

#[test]
fn an_adjustment_needs_a_non_zero_whole_delta_and_a_reason() {
    let table: &[(Value, &[&str])] = &[
        (json!({"delta": 0, "reason": "nothing"}), &["delta"]),
        (json!({"delta": 1.5, "reason": "x"}), &["delta"]),
        (json!({"delta": MAX_STOCK + 1, "reason": "x"}), &["delta"]),
        (json!({"delta": 1, "reason": "   "}), &["reason"]),
        (
            json!({"delta": 1, "reason": "r".repeat(common::domain::MAX_REASON_CHARS + 1)}),
            &["reason"],
        ),
        (json!({"delta": 1}), &[""]),
        (
            json!({"delta": 1, "reason": "x", "actor_id": Uuid::nil()}),
            &["actor_id"],
        ),
        (json!({"delta": -MAX_STOCK, "reason": "x"}), &[]),
        (json!({"delta": 3, "reason": "found in the back"}), &[]),
    ];
    for (body, expected) in table {
        assert_eq!(refused(body, adjustment), *expected, "{body}");
    }
}

#[test]
fn catalogue_filters_and_limits_are_checked() {
    let table: &[(ListProducts, Option<&str>)] = &[
        (
            ListProducts {
                min_price: Some(500),
                max_price: Some(100),
                ..Default::default()
            },
            Some("max_price"),
        ),
        (
            ListProducts {
                min_price: Some(-1),
                ..Default::default()
            },
            Some("min_price"),
        ),
        (
            ListProducts {
                limit: Some(0),
                ..Default::default()
            },
            Some("limit"),
        ),
        (
            ListProducts {
                limit: Some(101),
                ..Default::default()
            },
            Some("limit"),
        ),
        (
            ListProducts {
                q: Some("a".repeat(QUERY_MAX_CHARS + 1)),
                ..Default::default()
            },
            Some("q"),
        ),
        (
            ListProducts {
                min_price: Some(100),
                max_price: Some(100),
                limit: Some(100),
                ..Default::default()
            },
            None,
        ),
    ];
    for (query, expected) in table {
        let outcome = catalogue(ListProducts {
            q: query.q.clone(),
            min_price: query.min_price,
            max_price: query.max_price,
            limit: query.limit,
            ..Default::default()
        });
        let fields: Vec<String> = match outcome {
            Ok(_) => Vec::new(),
            Err(ApiError::Validation(errors)) => errors.into_iter().map(|e| e.field).collect(),
            Err(other) => panic!("{query:?}: {other:?}"),
        };
        let expected: Vec<String> = expected.iter().map(|f| f.to_string()).collect();
        assert_eq!(fields, expected, "{query:?}");
    }
}

#[test]
fn search_text_matches_literally() {
    assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
}

#[test]
fn every_bad_field_is_named_at_once() {
    let err = create(CreateProduct {
        name: "  ".into(),
        description: "d".repeat(DESCRIPTION_MAX_CHARS + 1),
        price: -1,
        stock: -1,
    })
    .unwrap_err();
    let ApiError::Validation(errors) = err else {
        panic!("expected a validation error");
    };
    let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["name", "description", "price", "stock"]);
}

#[test]
fn the_most_negative_delta_is_refused_not_overflowed() {
    let err = adjustment(AdjustStock {
        delta: i64::MIN,
        reason: "x".into(),
    });
    assert!(matches!(err, Err(ApiError::Validation(_))));
}

#[test]
fn names_are_trimmed() {
    let p = create(CreateProduct {
        name: "  Cup ".into(),
        description: String::new(),
        price: 0,
        stock: 0,
    })
    .expect("valid");
    assert_eq!(p.name.as_str(), "Cup");
}

#[test]
fn a_cursor_of_another_sort_order_is_refused() {
    let cursor = pagination::encode_cursor(&ProductCursor {
        sort: Sort::PriceAsc,
        key: SortKey::Price(5),
        id: Uuid::nil(),
    });
    let req = ListProducts {
        sort: Some(Sort::NameAsc),
        cursor: Some(cursor),
        ..Default::default()
    };
    assert!(matches!(catalogue(req), Err(ApiError::BadRequest(_))));
}
