-- The catalogue. `stock` is the available stock: what can still be reserved. Stock held by
-- orders lives in reservations; conservation is
--   initial_stock + Σ stock_adjustments.delta = stock + Σ quantities reserved or committed.
CREATE TABLE products (
    id            uuid PRIMARY KEY,
    name          text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    description   text NOT NULL DEFAULT '' CHECK (length(description) <= 5000),
    -- Minor units (cents) of `currency`; never floating point.
    price         bigint NOT NULL CHECK (price >= 0),
    currency      text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    stock         integer NOT NULL CHECK (stock >= 0),
    initial_stock integer NOT NULL CHECK (initial_stock >= 0),
    -- Archived products leave the catalogue but stay readable inside old orders.
    archived_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER products_touch BEFORE UPDATE ON products
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- The stock adjustments ledger: who changed available stock by how much, and why.
CREATE TABLE stock_adjustments (
    id         uuid PRIMARY KEY,
    product_id uuid NOT NULL REFERENCES products (id),
    delta      integer NOT NULL CHECK (delta <> 0),
    reason     text NOT NULL CHECK (length(btrim(reason)) BETWEEN 1 AND 500),
    actor_id   uuid REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX stock_adjustments_product ON stock_adjustments (product_id, created_at, id);
