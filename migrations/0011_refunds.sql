-- Refunds, and the payment status kept beside the lifecycle. An order's `amount_paid` is the
-- money its applied payments captured and `amount_refunded` what refunds of that money gave
-- back, both written by the order worker in the transaction that records the payment or the
-- refund's outcome, so `amount_paid - amount_refunded` always equals the applied payments minus
-- the succeeded refunds (the money reconciliation checks it).

ALTER TABLE orders
    ADD COLUMN amount_paid bigint NOT NULL DEFAULT 0,
    ADD COLUMN amount_refunded bigint NOT NULL DEFAULT 0,
    ADD CONSTRAINT orders_refunds_within_paid
        CHECK (amount_refunded >= 0 AND amount_refunded <= amount_paid);

UPDATE orders o SET amount_paid = p.total
  FROM (SELECT order_id, sum(amount)::int8 AS total FROM payments
         WHERE kind = 'succeeded' AND outcome = 'applied' GROUP BY order_id) p
 WHERE p.order_id = o.id;

CREATE TYPE refund_status AS ENUM ('REQUESTED', 'SUCCEEDED', 'FAILED');

-- A refund asked of the payment system: REQUESTED, then SUCCEEDED or FAILED once, with the
-- provider's reference of the outcome (unique: an outcome is recorded once). A refund returns
-- either part of the order's captured money (`payment_reference` null) or a payment recorded
-- `refund_required` (`payment_reference` names it). REQUESTED and SUCCEEDED refunds together
-- never exceed the money they return: the worker checks it under the order's row lock.
CREATE TABLE refunds (
    id                 uuid PRIMARY KEY,
    order_id           uuid NOT NULL REFERENCES orders (id),
    payment_reference  text REFERENCES payments (provider_reference),
    amount             bigint NOT NULL CHECK (amount > 0),
    currency           text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    reason             text NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
    actor              text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
    status             refund_status NOT NULL DEFAULT 'REQUESTED',
    requested_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    settled_at         timestamptz,
    provider_reference text UNIQUE CHECK (length(provider_reference) BETWEEN 1 AND 200),
    failure_reason     text CHECK (length(failure_reason) <= 1000),
    CONSTRAINT refunds_settled_once CHECK (
        (status = 'REQUESTED') = (settled_at IS NULL)
        AND (status = 'REQUESTED') = (provider_reference IS NULL))
);

CREATE INDEX refunds_order ON refunds (order_id);
CREATE INDEX refunds_payment ON refunds (payment_reference) WHERE payment_reference IS NOT NULL;
