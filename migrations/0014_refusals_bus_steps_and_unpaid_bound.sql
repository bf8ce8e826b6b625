-- Refunds the order worker refuses are recorded; outside systems' shipments and deliveries are
-- applied once per reference; the unpaid orders of one account are counted where an order is
-- recorded.

-- A refund the order worker refuses (more than is left to refund, nothing captured) is recorded
-- REFUSED with the reason (`failure_reason`), so the order shows it. It never reaches the
-- payment system: like a REQUESTED refund it has one timeline entry (`requested_entry_id`) and
-- no answer. The new value is not used below: an enum value added in a transaction cannot be
-- used before it commits, so the rules name the other values.
ALTER TYPE refund_status ADD VALUE 'REFUSED';

ALTER TABLE refunds DROP CONSTRAINT refunds_settled_once;
ALTER TABLE refunds
    ADD CONSTRAINT refunds_settled_once CHECK (
        (status IN ('SUCCEEDED', 'FAILED')) = (settled_at IS NOT NULL)
        AND (status IN ('SUCCEEDED', 'FAILED')) = (provider_reference IS NOT NULL)),
    ADD CONSTRAINT refunds_refusal_reason CHECK (
        status IN ('REQUESTED', 'SUCCEEDED', 'FAILED') OR failure_reason IS NOT NULL);

-- The first entry of a refund is its request or, for a refused one, its refusal and why.
CREATE OR REPLACE VIEW timeline_entries AS
    SELECT e.id, e.order_id, 'status' AS kind, e.from_status, e.to_status,
           NULL::uuid AS refund_id, NULL::refund_status AS refund_status,
           NULL::bigint AS amount, NULL::text AS currency, NULL::text AS payment_reference,
           e.at, e.actor, e.reason
      FROM order_events e
    UNION ALL
    SELECT r.requested_entry_id, r.order_id, 'refund', NULL, NULL, r.id,
           CASE WHEN r.settled_at IS NULL THEN r.status ELSE 'REQUESTED' END, r.amount,
           r.currency, r.payment_reference, r.requested_at, r.actor,
           CASE WHEN r.settled_at IS NULL THEN coalesce(r.failure_reason, r.reason)
                ELSE r.reason END
      FROM refunds r
    UNION ALL
    SELECT r.settled_entry_id, r.order_id, 'refund', NULL, NULL, r.id, r.status, r.amount,
           r.currency, r.payment_reference, r.settled_at, 'system:payments', r.failure_reason
      FROM refunds r
     WHERE r.settled_entry_id IS NOT NULL;

-- Outside systems report steps over the bus, each once per reference of theirs: a warehouse's
-- shipment (`orders.cmd.fulfil`, on the SHIPPED entry) and a carrier's delivery
-- (`orders.cmd.deliver`, on the DELIVERED entry). A reference names one order's step.
ALTER TABLE order_events
    ADD COLUMN reference text CHECK (length(reference) BETWEEN 1 AND 200);
CREATE UNIQUE INDEX order_events_reference ON order_events (to_status, reference)
    WHERE reference IS NOT NULL;

-- The unpaid (CONFIRMED) orders of one account, oldest reservation first: counted up to
-- MAX_UNPAID_ORDERS_PER_USER by the inventory worker where it records orders and by the api
-- before it publishes a placement, which also reads when the oldest expires (Retry-After).
CREATE INDEX orders_unpaid_by_user ON orders (user_id, reserved_at) WHERE status = 'CONFIRMED';
