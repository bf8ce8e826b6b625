-- Orders, their lines (a snapshot of name and price at order time), their timeline, and the
-- inventory side: one decision per order and the reservations it holds.

CREATE TABLE orders (
    id               uuid PRIMARY KEY,
    user_id          uuid NOT NULL REFERENCES users (id),
    status           text NOT NULL CHECK (status IN
                        ('PENDING', 'CONFIRMED', 'REJECTED', 'PAID', 'SHIPPED', 'DELIVERED', 'CANCELLED')),
    -- Minor units, computed by the system from the snapshot, never taken from the client.
    total            bigint NOT NULL CHECK (total >= 0),
    currency         text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    rejection_reason text,
    correlation_id   text,
    -- When the stock was reserved (CONFIRMED); the expiry sweeper reads it.
    reserved_at      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'REJECTED') = (rejection_reason IS NOT NULL))
);

CREATE TRIGGER orders_touch BEFORE UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- Keyset pagination of GET /orders: a customer's own orders, everyone's, and by status.
CREATE INDEX orders_user_created ON orders (user_id, created_at DESC, id DESC);
CREATE INDEX orders_created ON orders (created_at DESC, id DESC);
CREATE INDEX orders_status_created ON orders (status, created_at DESC, id DESC);
-- The reservation-expiry sweeper scans unpaid confirmed orders by age.
CREATE INDEX orders_confirmed_reserved_at ON orders (reserved_at) WHERE status = 'CONFIRMED';

CREATE TABLE order_items (
    order_id   uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_no    smallint NOT NULL CHECK (line_no >= 0),
    -- No foreign key: a line naming an unknown product is kept to explain the rejection.
    product_id uuid NOT NULL,
    -- Snapshot at order time; NULL only for a product that did not exist.
    name       text,
    unit_price bigint CHECK (unit_price >= 0),
    quantity   integer NOT NULL CHECK (quantity BETWEEN 1 AND 10000),
    subtotal   bigint CHECK (subtotal >= 0),
    PRIMARY KEY (order_id, product_id),
    CHECK ((name IS NULL) = (unit_price IS NULL) AND (unit_price IS NULL) = (subtotal IS NULL))
);

-- The timeline: every transition, who or which system made it, and why.
CREATE TABLE order_events (
    id          bigserial PRIMARY KEY,
    order_id    uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    from_status text,
    to_status   text NOT NULL,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor       text NOT NULL,
    reason      text,
    -- A transition happens once, however often its message is delivered.
    UNIQUE (order_id, to_status)
);

-- The inventory worker's decision per order: written in the reservation's transaction, it
-- makes a redelivered reserve command republish the same outcome instead of reserving twice.
CREATE TABLE inventory_decisions (
    order_id   uuid PRIMARY KEY,
    outcome    text NOT NULL CHECK (outcome IN ('reserved', 'rejected')),
    reason     text,
    decided_at timestamptz NOT NULL DEFAULT now()
);

-- Stock held by orders. `reserved` becomes `committed` at SHIPPED or `released` on cancel,
-- each exactly once (guarded updates).
CREATE TABLE reservations (
    order_id   uuid NOT NULL,
    product_id uuid NOT NULL REFERENCES products (id),
    quantity   integer NOT NULL CHECK (quantity > 0),
    state      text NOT NULL DEFAULT 'reserved' CHECK (state IN ('reserved', 'released', 'committed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, product_id)
);

CREATE INDEX reservations_held_by_product ON reservations (product_id) WHERE state <> 'released';

CREATE TRIGGER reservations_touch BEFORE UPDATE ON reservations
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- Idempotency-Key of POST /orders: the same key from the same user returns the same order.
CREATE TABLE idempotency_keys (
    user_id      uuid NOT NULL REFERENCES users (id),
    key          text NOT NULL,
    request_hash bytea NOT NULL,
    order_id     uuid NOT NULL,
    -- The normalised lines, to answer a retry before the order worker recorded the order.
    items        jsonb NOT NULL,
    state        text NOT NULL CHECK (state IN ('in_flight', 'published')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
