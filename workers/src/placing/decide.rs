//! Which orders of a batch get their stock: a pure function of the requests, taken in delivery
//! order, the products they name (locked by the caller) and the unpaid orders their accounts
//! hold (the accounts locked by the caller). An order gets every line or none, and an account at
//! its bound on unpaid orders gets none.

use common::domain::UNPAID_LIMIT_REJECTION;
use common::messages::Line;
use common::money::Quantity;
use std::collections::HashMap;
use uuid::Uuid;

/// A product as the decision sees it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Product {
    pub id: Uuid,
    pub name: String,
    pub price: i64,
    pub currency: String,
    /// Available stock.
    pub stock: i32,
    pub archived: bool,
}

/// One order to decide: whose it is, and its lines merged and sorted by product id.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub user_id: Uuid,
    pub lines: &'a [Line],
}

/// The bound on the unpaid (`CONFIRMED`) orders one account may hold
/// (`MAX_UNPAID_ORDERS_PER_USER`; `None`: unbounded), and how many the accounts of the batch
/// hold before it.
#[derive(Debug, Clone, Default)]
pub struct Unpaid {
    pub max: Option<i64>,
    pub held: HashMap<Uuid, i64>,
}

/// A line with the snapshot of its product, when the product exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedLine {
    pub product_id: Uuid,
    pub quantity: Quantity,
    pub name: Option<String>,
    pub unit_price: Option<i64>,
    pub subtotal: Option<i64>,
}

/// An order's lines priced from the catalogue, with its total and currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priced {
    pub lines: Vec<PricedLine>,
    pub total: i64,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Every line is reserved.
    Confirmed(Priced),
    /// Nothing is reserved; the reason names each line at fault.
    Rejected(Priced, String),
    /// The order cannot be recorded at all (its total overflows).
    Invalid(String),
}

/// Decides `requests` in order, each against the stock left by those before it. Known
/// products' prices are snapshotted; an order's currency is its first known product's, or
/// `store_currency` when it names none.
pub fn decide(
    requests: &[Request<'_>],
    products: &HashMap<Uuid, Product>,
    store_currency: &str,
    unpaid: &Unpaid,
) -> Vec<Decision> {
    let mut taken: HashMap<Uuid, i32> = HashMap::new();
    let mut held = unpaid.held.clone();
    requests
        .iter()
        .map(|request| {
            let priced = match price(request.lines, products, store_currency) {
                Ok(priced) => priced,
                Err(reason) => return Decision::Invalid(reason),
            };
            let holds = held.entry(request.user_id).or_default();
            if let Some(max) = unpaid.max
                && *holds >= max
            {
                return Decision::Rejected(
                    priced,
                    format!(
                        "{UNPAID_LIMIT_REJECTION}: the account already holds {max}, the most \
                         allowed; pay or cancel one, or wait for one to expire"
                    ),
                );
            }
            let problems = problems(request.lines, products, &taken, &priced.currency);
            if problems.is_empty() {
                for line in request.lines {
                    *taken.entry(line.product_id).or_default() += line.quantity.get();
                }
                *holds += 1;
                Decision::Confirmed(priced)
            } else {
                Decision::Rejected(priced, problems.join("; "))
            }
        })
        .collect()
}

/// How much of each product the confirmed decisions take.
pub fn taken(requests: &[Request<'_>], decisions: &[Decision]) -> HashMap<Uuid, i32> {
    let mut taken: HashMap<Uuid, i32> = HashMap::new();
    for (request, decision) in requests.iter().zip(decisions) {
        if matches!(decision, Decision::Confirmed(_)) {
            for line in request.lines {
                *taken.entry(line.product_id).or_default() += line.quantity.get();
            }
        }
    }
    taken
}

fn price(
    lines: &[Line],
    products: &HashMap<Uuid, Product>,
    store_currency: &str,
) -> Result<Priced, String> {
    let mut total: i64 = 0;
    let mut priced = Vec::with_capacity(lines.len());
    for line in lines {
        let product = products.get(&line.product_id);
        let subtotal = match product {
            Some(p) => Some(
                p.price
                    .checked_mul(i64::from(line.quantity.get()))
                    .ok_or("order total overflows")?,
            ),
            None => None,
        };
        if let Some(subtotal) = subtotal {
            total = total.checked_add(subtotal).ok_or("order total overflows")?;
        }
        priced.push(PricedLine {
            product_id: line.product_id,
            quantity: line.quantity,
            name: product.map(|p| p.name.clone()),
            unit_price: product.map(|p| p.price),
            subtotal,
        });
    }
    let currency = lines
        .iter()
        .find_map(|l| products.get(&l.product_id))
        .map_or(store_currency, |p| p.currency.as_str())
        .to_owned();
    Ok(Priced {
        lines: priced,
        total,
        currency,
    })
}

/// What stops an order from getting its stock, line by line (1-based, as customers count).
fn problems(
    lines: &[Line],
    products: &HashMap<Uuid, Product>,
    taken: &HashMap<Uuid, i32>,
    currency: &str,
) -> Vec<String> {
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, line)| {
            let n = i + 1;
            let Some(p) = products.get(&line.product_id) else {
                return Some(format!(
                    "line {n}: product {} does not exist",
                    line.product_id
                ));
            };
            if p.archived {
                return Some(format!(
                    "line {n}: product {} ({}) is no longer sold",
                    p.id, p.name
                ));
            }
            if p.currency != currency {
                return Some(format!(
                    "line {n}: product {} ({}) is priced in {}, the order in {currency}",
                    p.id, p.name, p.currency
                ));
            }
            let available = p.stock - taken.get(&p.id).copied().unwrap_or(0);
            (available < line.quantity.get()).then(|| {
                format!(
                    "line {n}: product {} ({}): {} requested, {available} available",
                    p.id, p.name, line.quantity
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(id: u128, stock: i32) -> Product {
        Product {
            id: Uuid::from_u128(id),
            name: format!("P{id}"),
            price: 250,
            currency: "USD".into(),
            stock,
            archived: false,
        }
    }

    fn catalogue(products: &[Product]) -> HashMap<Uuid, Product> {
        products.iter().map(|p| (p.id, p.clone())).collect()
    }

    fn line(id: u128, quantity: i64) -> Line {
        Line {
            product_id: Uuid::from_u128(id),
            quantity: Quantity::new(quantity).expect("a valid quantity"),
        }
    }

    fn requests(orders: &[Vec<Line>]) -> Vec<Request<'_>> {
        orders
            .iter()
            .map(|l| Request {
                user_id: Uuid::nil(),
                lines: l,
            })
            .collect()
    }

    fn run(products: &[Product], orders: &[Vec<Line>]) -> Vec<Decision> {
        decide(
            &requests(orders),
            &catalogue(products),
            "USD",
            &Unpaid::default(),
        )
    }

    fn confirmed(d: &Decision) -> bool {
        matches!(d, Decision::Confirmed(_))
    }

    fn reason(d: &Decision) -> &str {
        match d {
            Decision::Rejected(_, reason) | Decision::Invalid(reason) => reason,
            Decision::Confirmed(_) => "",
        }
    }

    #[test]
    fn the_last_unit_goes_to_the_order_that_asks_for_it_and_the_next_finds_none() {
        let d = run(&[product(1, 3)], &[vec![line(1, 3)], vec![line(1, 1)]]);
        assert!(confirmed(&d[0]));
        assert_eq!(
            reason(&d[1]),
            "line 1: product 00000000-0000-0000-0000-000000000001 (P1): 1 requested, 0 available"
        );
    }

    #[test]
    fn orders_tied_for_the_same_stock_are_decided_in_delivery_order() {
        let orders = [vec![line(1, 2)], vec![line(1, 2)], vec![line(1, 1)]];
        let d = run(&[product(1, 3)], &orders);
        assert!(confirmed(&d[0]));
        assert!(!confirmed(&d[1]), "only 1 left for the second");
        assert!(confirmed(&d[2]), "the one left fits the third");
    }

    #[test]
    fn a_rejected_order_takes_no_stock_from_those_after_it() {
        // The first order's second line is short, so its first line's units stay available.
        let orders = [vec![line(1, 2), line(2, 5)], vec![line(1, 2)]];
        let d = run(&[product(1, 2), product(2, 1)], &orders);
        assert!(!confirmed(&d[0]));
        assert!(reason(&d[0]).starts_with("line 2: "), "{}", reason(&d[0]));
        assert!(confirmed(&d[1]));
    }

    #[test]
    fn a_line_for_an_unknown_product_rejects_the_order_and_keeps_the_others_priced() {
        let d = run(&[product(1, 5)], &[vec![line(1, 1), line(9, 1)]]);
        let Decision::Rejected(priced, reason) = &d[0] else {
            panic!("expected a rejection, got {:?}", d[0]);
        };
        assert_eq!(
            reason,
            "line 2: product 00000000-0000-0000-0000-000000000009 does not exist"
        );
        assert_eq!(priced.total, 250, "the known line is priced");
        assert_eq!(priced.lines[1].unit_price, None);
    }

    #[test]
    fn every_line_at_fault_is_named() {
        let mut archived = product(2, 5);
        archived.archived = true;
        let d = run(
            &[product(1, 0), archived],
            &[vec![line(1, 1), line(2, 1), line(3, 1)]],
        );
        let reason = reason(&d[0]);
        assert_eq!(reason.matches("line ").count(), 3, "{reason}");
        assert!(reason.contains("is no longer sold"), "{reason}");
    }

    #[test]
    fn a_product_priced_in_another_currency_is_refused() {
        let mut euro = product(2, 5);
        euro.currency = "EUR".into();
        let d = run(&[product(1, 5), euro], &[vec![line(1, 1), line(2, 1)]]);
        assert!(reason(&d[0]).contains("is priced in EUR, the order in USD"));
    }

    #[test]
    fn an_overflowing_total_is_invalid_and_takes_nothing() {
        let mut dear = product(1, 10);
        dear.price = i64::MAX / 2;
        let d = run(
            &[dear, product(2, 10)],
            &[vec![line(1, 3)], vec![line(2, 2)]],
        );
        assert_eq!(d[0], Decision::Invalid("order total overflows".into()));
        let Decision::Confirmed(priced) = &d[1] else {
            panic!("the other order is confirmed");
        };
        assert_eq!(priced.total, 500);
    }

    #[test]
    fn what_the_confirmed_orders_take_is_summed_per_product() {
        let orders = [
            vec![line(1, 2), line(2, 1)],
            vec![line(1, 9)],
            vec![line(1, 1)],
        ];
        let requests = requests(&orders);
        let products = catalogue(&[product(1, 5), product(2, 5)]);
        let decisions = decide(&requests, &products, "USD", &Unpaid::default());
        let taken = taken(&requests, &decisions);
        assert_eq!(taken[&Uuid::from_u128(1)], 3);
        assert_eq!(taken[&Uuid::from_u128(2)], 1);
    }

    #[test]
    fn an_account_at_its_bound_of_unpaid_orders_gets_no_stock_and_others_still_do() {
        let orders = [vec![line(1, 1)], vec![line(1, 1)], vec![line(1, 1)]];
        let mut requests = requests(&orders);
        requests[2].user_id = Uuid::from_u128(7);
        let unpaid = Unpaid {
            max: Some(2),
            held: HashMap::from([(Uuid::nil(), 1)]),
        };
        let d = decide(&requests, &catalogue(&[product(1, 5)]), "USD", &unpaid);
        assert!(confirmed(&d[0]), "the second unpaid order of the account");
        assert!(reason(&d[1]).starts_with(UNPAID_LIMIT_REJECTION), "{d:?}");
        assert!(confirmed(&d[2]), "another account");
        assert_eq!(
            taken(&requests, &d)[&Uuid::from_u128(1)],
            2,
            "the refused order takes nothing"
        );
    }
}
