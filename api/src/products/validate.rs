//! Request validation: turns what clients send into the domain's validated values, naming
//! every bad field at once.

use super::model::{
    AdjustStock, Adjustment, CatalogueQuery, CreateProduct, Filters, LedgerQuery, ListAdjustments,
    ListProducts, NewProduct, ProductChanges, ProductCursor, ProductName, Sort, SortKey,
    UpdateProduct,
};
use crate::error::{ApiError, FieldError};
use crate::pagination;
use common::money::Money;

pub const NAME_MAX_CHARS: usize = 200;
pub const DESCRIPTION_MAX_CHARS: usize = 5000;
pub const QUERY_MAX_CHARS: usize = 200;
/// Highest stock, and largest single adjustment, accepted.
pub const MAX_STOCK: i64 = 1_000_000_000;

/// Collects field errors; `finish` turns them into one 422.
#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, ApiError> {
        if self.0.is_empty() {
            Ok(value())
        } else {
            Err(ApiError::Validation(self.0))
        }
    }

    /// The 422 for a value some check refused (each refusal adds an error).
    fn into_error(self) -> ApiError {
        ApiError::Validation(self.0)
    }
}

fn name(errors: &mut Errors, raw: &str) -> Option<ProductName> {
    let trimmed = raw.trim();
    let chars = trimmed.chars().count();
    if chars == 0 {
        errors.add("name", "must not be empty");
        None
    } else if chars > NAME_MAX_CHARS {
        errors.add(
            "name",
            format!("must be at most {NAME_MAX_CHARS} characters"),
        );
        None
    } else if trimmed.chars().any(char::is_control) {
        errors.add("name", "must not contain control characters");
        None
    } else {
        Some(ProductName(trimmed.to_owned()))
    }
}

fn description(errors: &mut Errors, raw: &str) -> Option<String> {
    if raw.chars().count() > DESCRIPTION_MAX_CHARS {
        errors.add(
            "description",
            format!("must be at most {DESCRIPTION_MAX_CHARS} characters"),
        );
        None
    } else {
        Some(raw.to_owned())
    }
}

fn price(errors: &mut Errors, field: &str, raw: i64) -> Option<Money> {
    Money::new(raw).map_err(|e| errors.add(field, e)).ok()
}

fn stock(errors: &mut Errors, raw: i64) -> Option<i32> {
    if raw < 0 {
        errors.add("stock", "must not be negative");
        None
    } else if raw > MAX_STOCK {
        errors.add("stock", format!("must be at most {MAX_STOCK}"));
        None
    } else {
        i32::try_from(raw).ok()
    }
}

pub fn create(req: CreateProduct) -> Result<NewProduct, ApiError> {
    let mut errors = Errors::default();
    let name = name(&mut errors, &req.name);
    let description = description(&mut errors, &req.description);
    let price = price(&mut errors, "price", req.price);
    let stock = stock(&mut errors, req.stock);
    match (name, description, price, stock) {
        (Some(name), Some(description), Some(price), Some(stock)) if errors.0.is_empty() => {
            Ok(NewProduct {
                name,
                description,
                price,
                stock,
            })
        }
        _ => Err(errors.into_error()),
    }
}

pub fn update(req: UpdateProduct) -> Result<ProductChanges, ApiError> {
    if req.name.is_none() && req.description.is_none() && req.price.is_none() && req.stock.is_none()
    {
        return Err(ApiError::Unprocessable(
            "nothing to change: give at least one of name, description, price, stock".into(),
        ));
    }
    let mut errors = Errors::default();
    let changes = ProductChanges {
        name: req.name.as_deref().and_then(|n| name(&mut errors, n)),
        description: req
            .description
            .as_deref()
            .and_then(|d| description(&mut errors, d)),
        price: req.price.and_then(|p| price(&mut errors, "price", p)),
        stock: req.stock.and_then(|s| stock(&mut errors, s)),
    };
    errors.finish(|| changes)
}

pub fn adjustment(req: AdjustStock) -> Result<Adjustment, ApiError> {
    let mut errors = Errors::default();
    let delta = if req.delta == 0 {
        errors.add("delta", "must not be 0");
        None
    } else if req.delta.unsigned_abs() > MAX_STOCK.unsigned_abs() {
        errors.add(
            "delta",
            format!("must be between -{MAX_STOCK} and {MAX_STOCK}"),
        );
        None
    } else {
        i32::try_from(req.delta).ok()
    };
    // The ledger's reason, bounded as the bus's adjustments (`inventory.cmd.adjust`) are.
    let reason = match common::domain::Reason::new(&req.reason) {
        Ok(reason) => Some(String::from(reason)),
        Err(message) => {
            errors.add("reason", message);
            None
        }
    };
    match (delta, reason) {
        (Some(delta), Some(reason)) if errors.0.is_empty() => Ok(Adjustment { delta, reason }),
        _ => Err(errors.into_error()),
    }
}

/// Escapes `%`, `_` and `\` so the text matches literally inside an ILIKE pattern.
pub fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

pub fn catalogue(req: ListProducts) -> Result<CatalogueQuery, ApiError> {
    let mut errors = Errors::default();
    let pattern = match req.q.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(q) if q.chars().count() > QUERY_MAX_CHARS => {
            errors.add("q", format!("must be at most {QUERY_MAX_CHARS} characters"));
            None
        }
        Some(q) => Some(like_pattern(q)),
    };
    let min_price = req
        .min_price
        .and_then(|p| price(&mut errors, "min_price", p));
    let max_price = req
        .max_price
        .and_then(|p| price(&mut errors, "max_price", p));
    if let (Some(min), Some(max)) = (min_price, max_price)
        && min > max
    {
        errors.add("max_price", "must not be lower than min_price");
    }
    let limit = match pagination::limit(req.limit) {
        Ok(limit) => limit,
        Err(ApiError::Validation(mut e)) => {
            errors.0.append(&mut e);
            pagination::DEFAULT_LIMIT
        }
        Err(other) => return Err(other),
    };
    let sort = req.sort.unwrap_or_default();
    let after = match req.cursor.as_deref() {
        None => None,
        Some(raw) => {
            let cursor: ProductCursor = pagination::decode_cursor(raw)?;
            let fits = matches!(
                (cursor.sort, &cursor.key),
                (Sort::NameAsc | Sort::NameDesc, SortKey::Name(_))
                    | (Sort::PriceAsc | Sort::PriceDesc, SortKey::Price(_))
                    | (
                        Sort::CreatedAtAsc | Sort::CreatedAtDesc,
                        SortKey::CreatedAt(_)
                    )
            );
            if !fits || cursor.sort != sort {
                return Err(ApiError::BadRequest(
                    "the cursor belongs to another sort order".into(),
                ));
            }
            Some(cursor)
        }
    };
    errors.finish(|| CatalogueQuery {
        filters: Filters {
            pattern,
            min_price,
            max_price,
            in_stock: req.in_stock,
        },
        sort,
        limit,
        after,
    })
}

pub fn ledger(req: ListAdjustments) -> Result<LedgerQuery, ApiError> {
    LedgerQuery::parse(req.limit, req.cursor.as_deref())
}

#[cfg(test)]
mod tests;
