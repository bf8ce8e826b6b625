//! The shipping steps after the sale: ship some quantities (a fulfilment), mark a shipment
//! delivered, cancel what is left. Each is one transaction under the order's row lock.

use super::ask::{Ask, Made, refused};
use super::order::OrderTx;
use super::read;
use crate::announce::{Change, Stepped};
use common::domain::{FulfilmentStatus, OrderStatus, ReservationState};
use common::domain::{Line, Lines};
use common::shipping::Shipment;
use uuid::Uuid;

/// A shipment asked for: of these quantities (`None`: everything left), with carrier and
/// tracking, under an outside system's reference if it came from one.
pub struct Fulfil {
    pub lines: Option<Lines>,
    pub shipment: Option<Shipment>,
    pub reference: Option<String>,
}

/// Quantities asked for, by product, sorted by id (as [`Lines`] keeps them).
pub fn quantities(lines: &[Line]) -> Vec<(Uuid, i64)> {
    lines
        .iter()
        .map(|l| (l.product_id, i64::from(l.quantity.get())))
        .collect()
}

/// Ships the quantities (each at most what is left of its line) of a PAID or
/// PARTIALLY_SHIPPED order in one fulfilment, whose id is the request's.
pub async fn fulfil(o: &mut OrderTx, ask: &Ask, f: &Fulfil) -> Made {
    if let Some(reference) = &f.reference
        && let Some(other) = sqlx::query_scalar!(
            "SELECT order_id FROM fulfilments WHERE reference = $1 AND id <> $2",
            reference,
            ask.request_id,
        )
        .fetch_optional(&mut *o.tx)
        .await?
    {
        return refused(format!(
            "reference {reference:?} is a shipment of order {other}"
        ));
    }
    if !matches!(
        o.order.status,
        OrderStatus::Paid | OrderStatus::PartiallyShipped
    ) {
        return refused(format!(
            "order is {}: only a PAID or PARTIALLY_SHIPPED order ships",
            o.order.status
        ));
    }
    let wanted: Vec<(Uuid, i64)> = match &f.lines {
        None => o
            .lines
            .iter()
            .filter(|l| l.left() > 0)
            .map(|l| (l.product_id, i64::from(l.left())))
            .collect(),
        Some(lines) => quantities(lines),
    };
    if wanted.is_empty() {
        return refused("nothing to ship: name at least one line".into());
    }
    for (product_id, quantity) in &wanted {
        let line = match o.line(*product_id) {
            Ok(line) => line,
            Err(why) => return Ok(Err(why)),
        };
        if *quantity < 1 || *quantity > i64::from(line.left()) {
            return refused(format!(
                "line {product_id}: {quantity} asked, {} left to ship",
                line.left()
            ));
        }
    }
    let products: Vec<Uuid> = wanted.iter().map(|(p, _)| *p).collect();
    let quantities: Vec<i32> = wanted
        .iter()
        .map(|(_, q)| i32::try_from(*q).unwrap_or(i32::MAX))
        .collect();
    let (carrier, tracking_number, tracking_url) = match &f.shipment {
        Some(s) => (
            Some(s.carrier.as_str()),
            Some(s.tracking_number.as_str()),
            s.tracking_url.as_deref(),
        ),
        None => (None, None, None),
    };
    sqlx::query!(
        "WITH shipment AS (
             INSERT INTO fulfilments (id, order_id, carrier, tracking_number, tracking_url,
                                      reference, actor, shipped_entry_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, nextval('order_events_id_seq'))
             RETURNING id
         ), shipped AS (
             INSERT INTO fulfilment_lines (fulfilment_id, order_id, product_id, quantity)
             SELECT $1, $2, l.product_id, l.quantity
               FROM unnest($8::uuid[], $9::int4[]) AS l(product_id, quantity)
         )
         UPDATE order_items i SET fulfilled_quantity = i.fulfilled_quantity + l.quantity
           FROM unnest($8::uuid[], $9::int4[]) AS l(product_id, quantity)
          WHERE i.order_id = $2 AND i.product_id = l.product_id",
        ask.request_id,
        o.order.id,
        carrier,
        tracking_number,
        tracking_url,
        f.reference.as_deref(),
        ask.actor,
        &products,
        &quantities,
    )
    .execute(&mut *o.tx)
    .await?;
    if carrier.is_some() {
        // The order shows its latest shipment's tracking.
        sqlx::query!(
            "UPDATE orders SET carrier = $2, tracking_number = $3, tracking_url = $4 WHERE id = $1",
            o.order.id,
            carrier,
            tracking_number,
            tracking_url,
        )
        .execute(&mut *o.tx)
        .await?;
    }
    for (product_id, quantity) in products.iter().zip(&quantities) {
        if let Some(line) = o.lines.iter_mut().find(|l| l.product_id == *product_id) {
            line.fulfilled += quantity;
        }
    }
    let to = o.derived_status();
    let reason = format!("shipment {}", ask.request_id);
    let event = o.move_to(to, &ask.actor, &reason, ask.request_id).await?;
    let changed = read::fulfilment_changed(&mut o.tx, ask.request_id).await?;
    Ok(Ok(Stepped {
        event,
        changes: changed.map(Change::Fulfilment).into_iter().collect(),
        ..Stepped::default()
    }))
}

/// Marks one shipment of the order delivered; the order is `DELIVERED` once it is `SHIPPED`
/// (nothing left) and every shipment is delivered.
pub async fn deliver(
    o: &mut OrderTx,
    ask: &Ask,
    fulfilment_id: Uuid,
    reference: Option<&str>,
) -> Made {
    let Some(status) = sqlx::query_scalar!(
        r#"SELECT status AS "status: FulfilmentStatus" FROM fulfilments
            WHERE id = $1 AND order_id = $2"#,
        fulfilment_id,
        o.order.id,
    )
    .fetch_optional(&mut *o.tx)
    .await?
    else {
        return refused(format!("no shipment {fulfilment_id} on this order"));
    };
    if status == FulfilmentStatus::Delivered {
        return refused(format!("shipment {fulfilment_id} is delivered already"));
    }
    if let Some(reference) = reference
        && let Some(other) = sqlx::query_scalar!(
            "SELECT id FROM fulfilments WHERE delivery_reference = $1",
            reference,
        )
        .fetch_optional(&mut *o.tx)
        .await?
    {
        return refused(format!(
            "reference {reference:?} is the delivery of shipment {other}"
        ));
    }
    sqlx::query!(
        "WITH delivered AS (
             UPDATE fulfilments
                SET status = 'DELIVERED', delivered_at = clock_timestamp(), delivered_by = $3,
                    delivery_reference = $4, delivered_entry_id = nextval('order_events_id_seq')
              WHERE id = $1
         )
         UPDATE order_items i SET delivered_quantity = i.delivered_quantity + l.quantity
           FROM fulfilment_lines l
          WHERE l.fulfilment_id = $1 AND i.order_id = $2 AND i.product_id = l.product_id",
        fulfilment_id,
        o.order.id,
        ask.actor,
        reference,
    )
    .execute(&mut *o.tx)
    .await?;
    let undelivered = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM fulfilments
            WHERE order_id = $1 AND status = 'SHIPPED' AND id <> $2"#,
        o.order.id,
        fulfilment_id,
    )
    .fetch_one(&mut *o.tx)
    .await?;
    let event = if o.order.status == OrderStatus::Shipped && undelivered == 0 {
        let reason = format!("shipment {fulfilment_id} delivered");
        o.move_to(OrderStatus::Delivered, &ask.actor, &reason, ask.request_id)
            .await?
    } else {
        None
    };
    let changed = read::fulfilment_changed(&mut o.tx, fulfilment_id).await?;
    Ok(Ok(Stepped {
        event,
        changes: changed.map(Change::Fulfilment).into_iter().collect(),
        ..Stepped::default()
    }))
}

/// Cancels every quantity of a PARTIALLY_SHIPPED order not shipped yet: its stock comes back,
/// its reservation is released, and its snapshot value is refunded through the refund path.
/// The order is then `SHIPPED` (nothing left).
pub async fn cancel_remaining(o: &mut OrderTx, ask: &Ask, reason: &str) -> Made {
    if o.order.status != OrderStatus::PartiallyShipped {
        return refused(format!(
            "order is {}: only a PARTIALLY_SHIPPED order has a rest to cancel",
            o.order.status
        ));
    }
    let left: Vec<(Uuid, i32, i64)> = o
        .lines
        .iter()
        .filter(|l| l.left() > 0)
        .map(|l| (l.product_id, l.left(), l.unit_price))
        .collect();
    let products: Vec<Uuid> = left.iter().map(|(p, _, _)| *p).collect();
    let quantities: Vec<i32> = left.iter().map(|(_, q, _)| *q).collect();
    // Locked in id order, as every writer of stock does.
    sqlx::query!(
        "SELECT id FROM products WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        &products,
    )
    .fetch_all(&mut *o.tx)
    .await?;
    sqlx::query!(
        "WITH lines AS (
             UPDATE order_items i SET cancelled_quantity = i.cancelled_quantity + l.quantity
               FROM unnest($2::uuid[], $3::int4[]) AS l(product_id, quantity)
              WHERE i.order_id = $1 AND i.product_id = l.product_id
         ), released AS (
             UPDATE reservations r
                SET state = CASE WHEN r.quantity = l.quantity THEN $4 ELSE r.state END,
                    quantity = CASE WHEN r.quantity = l.quantity THEN r.quantity
                                    ELSE r.quantity - l.quantity END
               FROM unnest($2::uuid[], $3::int4[]) AS l(product_id, quantity)
              WHERE r.order_id = $1 AND r.product_id = l.product_id AND r.state = $5
         )
         UPDATE products p SET stock = p.stock + l.quantity
           FROM unnest($2::uuid[], $3::int4[]) AS l(product_id, quantity)
          WHERE p.id = l.product_id",
        o.order.id,
        &products,
        &quantities,
        ReservationState::Released as ReservationState,
        ReservationState::Reserved as ReservationState,
    )
    .execute(&mut *o.tx)
    .await?;
    for line in o.lines.iter_mut() {
        line.cancelled += line.left();
    }
    let value: i64 = left.iter().map(|(_, q, price)| i64::from(*q) * price).sum();
    let why = format!("cancelled what was left to ship: {reason}");
    let event = o
        .move_to(OrderStatus::Shipped, &ask.actor, &why, ask.request_id)
        .await?;
    let refund = o.refund(ask.request_id, value, &ask.actor, &why).await?;
    metrics::counter!("stock_released_lines_total").increment(products.len() as u64);
    Ok(Ok(Stepped {
        event,
        stock: products,
        refunds: refund.into_iter().collect(),
        ..Stepped::default()
    }))
}
