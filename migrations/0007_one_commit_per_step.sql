-- One commit per order step. An order is recorded once, CONFIRMED with its reservations or
-- REJECTED, in the transaction that reserves its stock; a transition commits its status, its
-- timeline entry, its stock effect and its payment record together. Statuses and outcomes
-- become enum types, mapped to Rust enums; texts that arrive from the bus are bounded.

-- Orders still PENDING were recorded by the earlier two-step path and are waiting for the
-- inventory worker's decision. Settle them from that decision, in the same way the decision
-- would have: reserved orders become CONFIRMED (their reservations already exist), rejected
-- ones REJECTED. An order with no decision yet held no stock; its reservation request will
-- never be served, so it is rejected, and says why.
WITH decided AS (
    UPDATE orders o
       SET status = CASE WHEN d.outcome = 'reserved' THEN 'CONFIRMED' ELSE 'REJECTED' END,
           rejection_reason = CASE WHEN d.outcome = 'reserved' THEN NULL
                                   ELSE coalesce(d.reason, 'rejected') END,
           reserved_at = CASE WHEN d.outcome = 'reserved' THEN d.decided_at END
      FROM inventory_decisions d
     WHERE d.order_id = o.id AND o.status = 'PENDING'
    RETURNING o.id, o.status, o.rejection_reason
)
INSERT INTO order_events (order_id, from_status, to_status, actor, reason)
SELECT id, 'PENDING', status, 'system:inventory',
       CASE WHEN status = 'CONFIRMED' THEN 'stock reserved' ELSE rejection_reason END
  FROM decided;

WITH undecided AS (
    UPDATE orders
       SET status = 'REJECTED',
           rejection_reason = 'not reserved before the service was upgraded; place it again'
     WHERE status = 'PENDING'
    RETURNING id, rejection_reason
)
INSERT INTO order_events (order_id, from_status, to_status, actor, reason)
SELECT id, 'PENDING', 'REJECTED', 'system:inventory', rejection_reason FROM undecided;

DROP TABLE inventory_decisions;

-- Statuses as an enum type. PENDING stays a value (an order accepted but not recorded yet
-- reads as PENDING through the api) but is never stored.
CREATE TYPE order_status AS ENUM
    ('PENDING', 'CONFIRMED', 'REJECTED', 'PAID', 'SHIPPED', 'DELIVERED', 'CANCELLED');

ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders DROP CONSTRAINT orders_check;
DROP INDEX orders_confirmed_reserved_at;
ALTER TABLE orders ALTER COLUMN status TYPE order_status USING status::order_status;
ALTER TABLE orders
    ADD CONSTRAINT orders_recorded_once CHECK (status <> 'PENDING'),
    ADD CONSTRAINT orders_rejection_reason CHECK ((status = 'REJECTED') = (rejection_reason IS NOT NULL));
CREATE INDEX orders_confirmed_reserved_at ON orders (reserved_at) WHERE status = 'CONFIRMED';

ALTER TABLE order_events
    ALTER COLUMN from_status TYPE order_status USING from_status::order_status,
    ALTER COLUMN to_status TYPE order_status USING to_status::order_status;

-- Texts from the bus are bounded by the workers and, whatever path writes them, here. Longer
-- values written before are cut to the bound first.
UPDATE order_events SET actor = left(actor, 200) WHERE length(actor) > 200;
UPDATE order_events SET reason = left(reason, 1000) WHERE length(reason) > 1000;
UPDATE orders SET rejection_reason = left(rejection_reason, 20000)
 WHERE length(rejection_reason) > 20000;
ALTER TABLE order_events
    ADD CONSTRAINT order_events_actor_length CHECK (length(actor) BETWEEN 1 AND 200),
    ADD CONSTRAINT order_events_reason_length CHECK (length(reason) <= 20000);
ALTER TABLE orders
    ADD CONSTRAINT orders_rejection_reason_length CHECK (length(rejection_reason) <= 20000);

-- Reservations.
CREATE TYPE reservation_state AS ENUM ('reserved', 'committed', 'released');
ALTER TABLE reservations DROP CONSTRAINT reservations_state_check;
ALTER TABLE reservations ALTER COLUMN state DROP DEFAULT;
DROP INDEX reservations_held_by_product;
ALTER TABLE reservations ALTER COLUMN state TYPE reservation_state USING state::reservation_state;
ALTER TABLE reservations ALTER COLUMN state SET DEFAULT 'reserved';
CREATE INDEX reservations_held_by_product ON reservations (product_id) WHERE state <> 'released';

-- Payments.
CREATE TYPE payment_kind AS ENUM ('succeeded', 'failed');
CREATE TYPE payment_outcome AS ENUM ('applied', 'refund_required', 'ignored');
ALTER TABLE payments DROP CONSTRAINT payments_kind_check;
ALTER TABLE payments DROP CONSTRAINT payments_outcome_check;
DROP INDEX payments_refund_required;
ALTER TABLE payments
    ALTER COLUMN kind TYPE payment_kind USING kind::payment_kind,
    ALTER COLUMN outcome TYPE payment_outcome USING outcome::payment_outcome;
CREATE INDEX payments_refund_required ON payments (received_at) WHERE outcome = 'refund_required';
UPDATE payments SET note = left(note, 1000) WHERE length(note) > 1000;
ALTER TABLE payments ADD CONSTRAINT payments_note_length CHECK (length(note) <= 1000);

-- Stock adjustments published by warehouse and ERP systems (`inventory.cmd.adjust`) carry the
-- publisher's reference, applied once each.
ALTER TABLE stock_adjustments
    ADD COLUMN reference text UNIQUE CHECK (length(reference) BETWEEN 1 AND 200);
