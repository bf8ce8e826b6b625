//! What a refund may still give back: one statement, read by the api (to answer the common
//! mistakes at once) and by the order worker (under the order's row lock, where it decides).

use crate::money::Currency;
use sqlx::PgExecutor;
use uuid::Uuid;

/// The money a refund would give back and what is left of it once the requested and succeeded
/// refunds of it are taken off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refundable {
    /// The order's captured money, or the `refund_required` payment's amount (minor units).
    pub paid: i64,
    /// `paid` less the refunds of it `REQUESTED` or `SUCCEEDED`.
    pub left: i64,
    pub currency: Currency,
}

/// What is refundable of order `order_id`'s captured money or, with `payment_reference`, of
/// that `refund_required` payment of the order; `None` when there is no such order or payment.
pub async fn refundable(
    db: impl PgExecutor<'_>,
    order_id: Uuid,
    payment_reference: Option<&str>,
) -> sqlx::Result<Option<Refundable>> {
    sqlx::query_as!(
        Refundable,
        r#"SELECT o.amount_paid AS "paid!",
                  o.amount_paid - coalesce((SELECT sum(r.amount) FROM refunds r
                                             WHERE r.order_id = o.id
                                               AND r.payment_reference IS NULL
                                               AND r.status IN ('REQUESTED', 'SUCCEEDED')), 0)::int8 AS "left!",
                  o.currency AS "currency!: Currency"
             FROM orders o WHERE o.id = $1 AND $2::text IS NULL
           UNION ALL
           SELECT p.amount,
                  p.amount - coalesce((SELECT sum(r.amount) FROM refunds r
                                        WHERE r.payment_reference = p.provider_reference
                                          AND r.status IN ('REQUESTED', 'SUCCEEDED')), 0)::int8,
                  p.currency
             FROM payments p
            WHERE p.provider_reference = $2 AND p.order_id = $1
              AND p.kind = 'succeeded' AND p.outcome = 'refund_required'"#,
        order_id,
        payment_reference,
    )
    .fetch_optional(db)
    .await
}
