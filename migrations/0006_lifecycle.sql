-- Payments received from payment systems, and what was done with each.
CREATE TABLE payments (
    provider_reference text PRIMARY KEY CHECK (length(provider_reference) BETWEEN 1 AND 200),
    order_id           uuid NOT NULL,
    kind               text NOT NULL CHECK (kind IN ('succeeded', 'failed')),
    amount             bigint NOT NULL CHECK (amount >= 0),
    currency           text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- applied: moved the order; refund_required: money to return (wrong amount, order no longer
    -- payable, paid twice); ignored: nothing to do (a failure for an order no longer waiting).
    outcome            text NOT NULL CHECK (outcome IN ('applied', 'refund_required', 'ignored')),
    note               text,
    received_at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX payments_order ON payments (order_id);
CREATE INDEX payments_refund_required ON payments (received_at) WHERE outcome = 'refund_required';
