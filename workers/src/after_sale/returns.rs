//! Returns: asked for on delivered quantities (by the customer within the return window, by
//! staff at any time), then received once (each line restocked or written off, the lines'
//! snapshot value refunded through the refund path), rejected, or cancelled. Each step is one
//! transaction under the order's row lock.

use super::ask::{Ask, Made, Refused, refused};
use super::order::{OrderTx, now};
use super::read;
use super::shipping::quantities;
use crate::announce::{Change, Stepped};
use crate::consumer::Failure;
use common::domain::Line;
use common::domain::ReturnStatus;
use uuid::Uuid;

/// Fixed namespace of the ids of the stock ledger entries received returns write (UUID v5).
const LEDGER_IDS: Uuid = Uuid::from_u128(0x7265_7475_726e_2d72_6573_746f_636b_0001);

/// Asks to return delivered quantities; the return's id is the request's.
pub async fn request(
    o: &mut OrderTx,
    ask: &Ask,
    lines: &[Line],
    reason: &str,
    window: chrono::Duration,
) -> Made {
    let last_delivery = sqlx::query_scalar!(
        "SELECT max(delivered_at) FROM fulfilments WHERE order_id = $1",
        o.order.id,
    )
    .fetch_one(&mut *o.tx)
    .await?;
    let Some(last_delivery) = last_delivery else {
        return refused("nothing of this order was delivered: there is nothing to return".into());
    };
    if !ask.staff && now(&mut o.tx).await? > last_delivery + window {
        return refused(format!(
            "the return window of {} days closed on {}",
            window.num_days(),
            (last_delivery + window).format("%Y-%m-%d")
        ));
    }
    let wanted = quantities(lines);
    if wanted.is_empty() {
        return refused("nothing to return: name at least one line".into());
    }
    for (product_id, quantity) in &wanted {
        let line = match o.line(*product_id) {
            Ok(line) => line,
            Err(why) => return Ok(Err(why)),
        };
        if *quantity < 1 || *quantity > i64::from(line.returnable()) {
            return refused(format!(
                "line {product_id}: {quantity} asked, {} delivered and not returned or asked for",
                line.returnable()
            ));
        }
    }
    let products: Vec<Uuid> = wanted.iter().map(|(p, _)| *p).collect();
    let quantities: Vec<i32> = wanted
        .iter()
        .map(|(_, q)| i32::try_from(*q).unwrap_or(i32::MAX))
        .collect();
    sqlx::query!(
        "WITH asked AS (
             INSERT INTO returns (id, order_id, reason, actor, requested_entry_id)
             VALUES ($1, $2, $3, $4, nextval('order_events_id_seq'))
         ), asked_lines AS (
             INSERT INTO return_lines (return_id, order_id, product_id, quantity)
             SELECT $1, $2, l.product_id, l.quantity
               FROM unnest($5::uuid[], $6::int4[]) AS l(product_id, quantity)
         )
         UPDATE order_items i
            SET return_requested_quantity = i.return_requested_quantity + l.quantity
           FROM unnest($5::uuid[], $6::int4[]) AS l(product_id, quantity)
          WHERE i.order_id = $2 AND i.product_id = l.product_id",
        ask.request_id,
        o.order.id,
        reason,
        ask.actor,
        &products,
        &quantities,
    )
    .execute(&mut *o.tx)
    .await?;
    changed(o, ask.request_id, Stepped::default()).await
}

/// A return of this order still `REQUESTED`, or the refusal naming where it stands.
async fn open_return(o: &mut OrderTx, return_id: Uuid) -> Result<Result<(), Refused>, Failure> {
    let status = sqlx::query_scalar!(
        r#"SELECT status AS "status: ReturnStatus" FROM returns WHERE id = $1 AND order_id = $2"#,
        return_id,
        o.order.id,
    )
    .fetch_optional(&mut *o.tx)
    .await?;
    Ok(match status {
        None => Err(Refused(format!("no return {return_id} on this order"))),
        Some(ReturnStatus::Requested) => Ok(()),
        Some(status) => Err(Refused(format!(
            "return {return_id} is {status:?}: a received, rejected or cancelled return is final"
        ))),
    })
}

/// The goods of a return came back: the lines named in `restock` go back into stock (a
/// ledger entry of kind `return` each), the others are written off, and the lines' snapshot
/// value is refunded, all in one transaction.
pub async fn receive(o: &mut OrderTx, ask: &Ask, return_id: Uuid, restock: &[Uuid]) -> Made {
    if let Err(why) = open_return(o, return_id).await? {
        return Ok(Err(why));
    }
    let lines = sqlx::query!(
        "SELECT product_id, quantity FROM return_lines WHERE return_id = $1 ORDER BY product_id",
        return_id,
    )
    .fetch_all(&mut *o.tx)
    .await?;
    if let Some(stranger) = restock
        .iter()
        .find(|p| !lines.iter().any(|l| l.product_id == **p))
    {
        return refused(format!(
            "product {stranger} is not a line of return {return_id}"
        ));
    }
    let restocked: Vec<Uuid> = lines
        .iter()
        .filter(|l| restock.contains(&l.product_id))
        .map(|l| l.product_id)
        .collect();
    let quantities: Vec<i32> = lines
        .iter()
        .filter(|l| restock.contains(&l.product_id))
        .map(|l| l.quantity)
        .collect();
    let ledger_ids: Vec<Uuid> = restocked
        .iter()
        .map(|p| Uuid::new_v5(&LEDGER_IDS, format!("{return_id}:{p}").as_bytes()))
        .collect();
    let staff_id = ask
        .actor
        .strip_prefix("user:")
        .and_then(|id| id.parse::<Uuid>().ok());
    // Locked in id order, as every writer of stock does.
    sqlx::query!(
        "SELECT id FROM products WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        &restocked,
    )
    .fetch_all(&mut *o.tx)
    .await?;
    sqlx::query!(
        "WITH marked AS (
             UPDATE return_lines SET restock = product_id = ANY($2) WHERE return_id = $1
         ), lines AS (
             UPDATE order_items i
                SET return_requested_quantity = i.return_requested_quantity - l.quantity,
                    returned_quantity = i.returned_quantity + l.quantity
               FROM return_lines l
              WHERE l.return_id = $1 AND i.order_id = l.order_id AND i.product_id = l.product_id
         ), restocked AS (
             UPDATE products p SET stock = p.stock + r.quantity
               FROM unnest($2::uuid[], $3::int4[], $4::uuid[]) AS r(product_id, quantity, ledger_id)
              WHERE p.id = r.product_id
             RETURNING p.id, p.stock
         )
         INSERT INTO stock_adjustments (id, product_id, delta, reason, actor_id, stock_after, kind,
                                        return_id)
         SELECT r.ledger_id, r.product_id, r.quantity, 'return ' || $1::text || ' received',
                $5, s.stock, 'return', $1
           FROM unnest($2::uuid[], $3::int4[], $4::uuid[]) AS r(product_id, quantity, ledger_id)
           JOIN restocked s ON s.id = r.product_id",
        return_id,
        &restocked,
        &quantities,
        &ledger_ids,
        staff_id,
    )
    .execute(&mut *o.tx)
    .await?;
    let value: i64 = lines
        .iter()
        .map(|l| {
            let price = o.line(l.product_id).map_or(0, |line| line.unit_price);
            i64::from(l.quantity) * price
        })
        .sum();
    let why = format!("return {return_id} received");
    let refund = o.refund(return_id, value, &ask.actor, &why).await?;
    sqlx::query!(
        "UPDATE returns
            SET status = 'RECEIVED', decided_by = $2, decided_at = clock_timestamp(),
                decided_entry_id = nextval('order_events_id_seq'), refund_id = $3
          WHERE id = $1",
        return_id,
        ask.actor,
        refund.as_ref().map(|r| r.id),
    )
    .execute(&mut *o.tx)
    .await?;
    let stepped = Stepped {
        stock: restocked,
        refunds: refund.into_iter().collect(),
        ..Stepped::default()
    };
    changed(o, return_id, stepped).await
}

/// Staff refuse a return (`reason`), or it is withdrawn (`None`): the quantities it asked for
/// may be asked for again.
pub async fn close(o: &mut OrderTx, ask: &Ask, return_id: Uuid, reason: Option<&str>) -> Made {
    if let Err(why) = open_return(o, return_id).await? {
        return Ok(Err(why));
    }
    let status = if reason.is_some() {
        ReturnStatus::Rejected
    } else {
        ReturnStatus::Cancelled
    };
    sqlx::query!(
        "WITH closed AS (
             UPDATE returns
                SET status = $2, decided_by = $3, decided_at = clock_timestamp(),
                    decided_entry_id = nextval('order_events_id_seq'), rejection_reason = $4
              WHERE id = $1
         )
         UPDATE order_items i
            SET return_requested_quantity = i.return_requested_quantity - l.quantity
           FROM return_lines l
          WHERE l.return_id = $1 AND i.order_id = l.order_id AND i.product_id = l.product_id",
        return_id,
        status as ReturnStatus,
        ask.actor,
        reason,
    )
    .execute(&mut *o.tx)
    .await?;
    changed(o, return_id, Stepped::default()).await
}

/// `stepped` with the return's change to announce.
async fn changed(o: &mut OrderTx, return_id: Uuid, stepped: Stepped) -> Made {
    let changed = read::return_changed(&mut o.tx, return_id).await?;
    Ok(Ok(Stepped {
        changes: changed.map(Change::Return).into_iter().collect(),
        ..stepped
    }))
}
