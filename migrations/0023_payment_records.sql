-- Each payment as the ADMIN's payments list shows it (`api/src/ops/payments.rs`), with what its
-- refunds gave back and, for a payment recorded `refund_required`, how much of it no refund has
-- given back or been asked for yet: the refund queue, whose size the workers' gauge
-- `payments_awaiting_refund` counts (`workers/src/reconcile.rs`). One definition for both. A
-- plain view: PostgreSQL inlines it, so a list's predicates on `payments` still choose that
-- table's indexes (`payments_received`, `payments_outcome_received`).
CREATE VIEW payment_records AS
SELECT p.provider_reference, p.order_id, p.kind, p.amount, p.currency, p.outcome, p.note,
       p.received_at,
       COALESCE(r.refunded, 0)::int8 AS refunded,
       (CASE WHEN p.outcome = 'refund_required'
             THEN greatest(p.amount - COALESCE(r.held, 0), 0) ELSE 0 END)::int8 AS awaiting_refund
  FROM payments p
  LEFT JOIN LATERAL (
       SELECT sum(amount) FILTER (WHERE status = 'SUCCEEDED')::int8 AS refunded,
              sum(amount) FILTER (WHERE status IN ('REQUESTED', 'SUCCEEDED'))::int8 AS held
         FROM refunds WHERE payment_reference = p.provider_reference) r ON true;
