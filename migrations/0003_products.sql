-- The catalogue. `stock` is the available stock: what can still be reserved. Stock held by
-- orders lives in reservations; conservation is
--   initial_stock + Σ stock_adjustments.delta = stock + Σ quantities reserved or committed.
-- Every rule the api validates is also a constraint here, so no code path can break it.

-- Trigram matching for the catalogue's text search (`name ILIKE '%…%'` served by GIN).
-- pg_trgm ships with PostgreSQL (contrib) and is a trusted extension: a database owner may
-- create it without superuser rights.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE products (
    id            uuid PRIMARY KEY,
    name          text NOT NULL CHECK (name = btrim(name) AND length(name) BETWEEN 1 AND 200),
    description   text NOT NULL DEFAULT '' CHECK (length(description) <= 5000),
    -- Minor units (cents) of `currency`; never floating point.
    price         bigint NOT NULL CONSTRAINT products_price_check CHECK (price >= 0),
    currency      text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    stock         integer NOT NULL CONSTRAINT products_stock_check CHECK (stock >= 0),
    initial_stock integer NOT NULL CHECK (initial_stock >= 0),
    -- Archived products leave the catalogue but stay readable inside old orders.
    archived_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER products_touch BEFORE UPDATE ON products
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- Keyset pagination of GET /products, one index per sort order (scanned backwards for the
-- descending orders), over the catalogue only: archived rows never appear in a list.
CREATE INDEX products_name_id ON products (name, id) WHERE archived_at IS NULL;
CREATE INDEX products_price_id ON products (price, id) WHERE archived_at IS NULL;
CREATE INDEX products_created_at_id ON products (created_at, id) WHERE archived_at IS NULL;
-- Text search on name and description (`q`): one trigram index per column, combined by a
-- BitmapOr for `name ILIKE $q OR description ILIKE $q`.
CREATE INDEX products_name_trgm ON products USING gin (name gin_trgm_ops) WHERE archived_at IS NULL;
CREATE INDEX products_description_trgm ON products USING gin (description gin_trgm_ops)
    WHERE archived_at IS NULL;

-- The stock adjustments ledger: who changed available stock by how much, and why.
-- Rows are only ever inserted, in the same transaction as the change of `products.stock`.
CREATE TABLE stock_adjustments (
    id          uuid PRIMARY KEY,
    product_id  uuid NOT NULL REFERENCES products (id),
    delta       integer NOT NULL CHECK (delta <> 0),
    reason      text NOT NULL CHECK (reason = btrim(reason) AND length(reason) BETWEEN 1 AND 500),
    actor_id    uuid REFERENCES users (id),
    -- Available stock right after this adjustment, for auditing.
    stock_after integer NOT NULL CHECK (stock_after >= 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Keyset pagination of GET /products/{id}/stock-adjustments.
CREATE INDEX stock_adjustments_product ON stock_adjustments (product_id, created_at, id);
