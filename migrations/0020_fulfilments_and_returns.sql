-- After the sale: shipments of some quantities (fulfilments), cancellation of what is left,
-- and returns with restock. Per order line, always:
--   fulfilled + cancelled <= ordered,  delivered <= fulfilled,
--   returned + asked for return <= delivered
-- as CHECK constraints on the line, which the order worker updates under the order's row lock
-- in the transaction of each step.

ALTER TABLE order_items
    ADD COLUMN fulfilled_quantity integer NOT NULL DEFAULT 0 CHECK (fulfilled_quantity >= 0),
    ADD COLUMN cancelled_quantity integer NOT NULL DEFAULT 0 CHECK (cancelled_quantity >= 0),
    ADD COLUMN delivered_quantity integer NOT NULL DEFAULT 0 CHECK (delivered_quantity >= 0),
    ADD COLUMN returned_quantity integer NOT NULL DEFAULT 0 CHECK (returned_quantity >= 0),
    -- Asked for by returns not yet received, rejected or cancelled.
    ADD COLUMN return_requested_quantity integer NOT NULL DEFAULT 0
        CHECK (return_requested_quantity >= 0),
    ADD CONSTRAINT order_items_shipped_within_ordered
        CHECK (fulfilled_quantity + cancelled_quantity <= quantity),
    ADD CONSTRAINT order_items_delivered_within_shipped
        CHECK (delivered_quantity <= fulfilled_quantity),
    ADD CONSTRAINT order_items_returns_within_delivered
        CHECK (returned_quantity + return_requested_quantity <= delivered_quantity);

CREATE TYPE fulfilment_status AS ENUM ('SHIPPED', 'DELIVERED');

-- One shipment of some of an order's quantities.
CREATE TABLE fulfilments (
    id                 uuid PRIMARY KEY,
    order_id           uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    status             fulfilment_status NOT NULL DEFAULT 'SHIPPED',
    carrier            text CHECK (length(carrier) BETWEEN 1 AND 100),
    tracking_number    text CHECK (length(tracking_number) BETWEEN 1 AND 100),
    tracking_url       text CHECK (length(tracking_url) <= 2000 AND tracking_url ~* '^https?://'),
    -- A warehouse's reference of the shipment (once per reference); a carrier's of its delivery.
    reference          text UNIQUE CHECK (length(reference) BETWEEN 1 AND 200),
    delivery_reference text UNIQUE CHECK (length(delivery_reference) BETWEEN 1 AND 200),
    -- Who shipped and delivered it; NULL for a shipment made by a move to SHIPPED, whose
    -- status entry names who made it.
    actor              text CHECK (length(actor) BETWEEN 1 AND 200),
    delivered_by       text CHECK (length(delivered_by) BETWEEN 1 AND 200),
    shipped_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    delivered_at       timestamptz,
    -- Timeline entries (one sequence with the status entries); NULL for the shipments made by a
    -- move to SHIPPED or DELIVERED, which the status entry shows.
    shipped_entry_id   bigint UNIQUE,
    delivered_entry_id bigint UNIQUE,
    CONSTRAINT fulfilments_delivered_once CHECK ((status = 'DELIVERED') = (delivered_at IS NOT NULL)),
    CONSTRAINT fulfilments_shipment_whole CHECK ((carrier IS NULL) = (tracking_number IS NULL)
        AND (tracking_url IS NULL OR carrier IS NOT NULL))
);

CREATE INDEX fulfilments_order ON fulfilments (order_id, shipped_at);

CREATE TABLE fulfilment_lines (
    fulfilment_id uuid NOT NULL REFERENCES fulfilments (id) ON DELETE CASCADE,
    order_id      uuid NOT NULL,
    product_id    uuid NOT NULL,
    quantity      integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (fulfilment_id, product_id),
    FOREIGN KEY (order_id, product_id) REFERENCES order_items (order_id, product_id) ON DELETE CASCADE
);

CREATE INDEX fulfilment_lines_order ON fulfilment_lines (order_id);

CREATE TYPE return_status AS ENUM ('REQUESTED', 'RECEIVED', 'REJECTED', 'CANCELLED');

-- A return of delivered quantities: requested, then received, rejected or cancelled, once.
CREATE TABLE returns (
    id                uuid PRIMARY KEY,
    order_id          uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    status            return_status NOT NULL DEFAULT 'REQUESTED',
    reason            text NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
    actor             text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
    requested_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    decided_by        text CHECK (length(decided_by) BETWEEN 1 AND 200),
    decided_at        timestamptz,
    rejection_reason  text CHECK (length(rejection_reason) BETWEEN 1 AND 1000),
    refund_id         uuid REFERENCES refunds (id),
    requested_entry_id bigint NOT NULL UNIQUE,
    decided_entry_id  bigint UNIQUE,
    CONSTRAINT returns_decided_once CHECK (
        (status = 'REQUESTED') = (decided_at IS NULL)
        AND (decided_at IS NULL) = (decided_by IS NULL)
        AND (decided_at IS NULL) = (decided_entry_id IS NULL)
        AND (status = 'REJECTED') = (rejection_reason IS NOT NULL))
);

CREATE INDEX returns_order ON returns (order_id, requested_at);

CREATE TABLE return_lines (
    return_id  uuid NOT NULL REFERENCES returns (id) ON DELETE CASCADE,
    order_id   uuid NOT NULL,
    product_id uuid NOT NULL,
    quantity   integer NOT NULL CHECK (quantity > 0),
    -- Set when the return is received: back into stock, or written off.
    restock    boolean,
    PRIMARY KEY (return_id, product_id),
    FOREIGN KEY (order_id, product_id) REFERENCES order_items (order_id, product_id) ON DELETE CASCADE
);

-- The stock ledger takes the quantities received returns put back, as entries of their own.
ALTER TABLE stock_adjustments
    ADD COLUMN kind text NOT NULL DEFAULT 'adjustment' CHECK (kind IN ('adjustment', 'return')),
    ADD COLUMN return_id uuid REFERENCES returns (id),
    ADD CONSTRAINT stock_adjustments_return_kind CHECK ((kind = 'return') = (return_id IS NOT NULL));

-- The outcome of each after-sale step asked for through the api, by the request that asked:
-- the step made (refusal NULL), or why the order worker refused it. The api answers from it.
CREATE TABLE after_sale_outcomes (
    request_id  uuid PRIMARY KEY,
    order_id    uuid NOT NULL,
    refusal     text CHECK (length(refusal) BETWEEN 1 AND 2000),
    recorded_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX after_sale_outcomes_recorded ON after_sale_outcomes (recorded_at);

-- The lines follow the order's moves made by status change (ship everything left, deliver
-- every shipment, cancel): one place keeps the per-line quantities right whichever path moved
-- the order. The after-sale steps update the lines before the status, so these find nothing
-- left to do for them.
CREATE FUNCTION order_lines_follow_status() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    shipment uuid;
BEGIN
    IF NEW.status = 'SHIPPED' AND EXISTS (
        SELECT 1 FROM order_items
         WHERE order_id = NEW.id AND fulfilled_quantity + cancelled_quantity < quantity) THEN
        shipment := gen_random_uuid();
        INSERT INTO fulfilments (id, order_id, carrier, tracking_number, tracking_url)
        VALUES (shipment, NEW.id, NEW.carrier, NEW.tracking_number, NEW.tracking_url);
        INSERT INTO fulfilment_lines (fulfilment_id, order_id, product_id, quantity)
        SELECT shipment, order_id, product_id, quantity - fulfilled_quantity - cancelled_quantity
          FROM order_items
         WHERE order_id = NEW.id AND fulfilled_quantity + cancelled_quantity < quantity;
        UPDATE order_items SET fulfilled_quantity = quantity - cancelled_quantity
         WHERE order_id = NEW.id AND fulfilled_quantity + cancelled_quantity < quantity;
    ELSIF NEW.status = 'DELIVERED' THEN
        UPDATE fulfilments SET status = 'DELIVERED', delivered_at = clock_timestamp()
         WHERE order_id = NEW.id AND status = 'SHIPPED';
        UPDATE order_items SET delivered_quantity = fulfilled_quantity
         WHERE order_id = NEW.id AND delivered_quantity <> fulfilled_quantity;
    ELSIF NEW.status = 'CANCELLED' THEN
        UPDATE order_items SET cancelled_quantity = quantity - fulfilled_quantity
         WHERE order_id = NEW.id AND unit_price IS NOT NULL
           AND fulfilled_quantity + cancelled_quantity < quantity;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER order_lines_follow_status AFTER UPDATE OF status ON orders
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION order_lines_follow_status();

-- Orders shipped, delivered or cancelled before: their lines and one shipment each.
UPDATE order_items i
   SET fulfilled_quantity = i.quantity,
       delivered_quantity = CASE WHEN o.status = 'DELIVERED' THEN i.quantity ELSE 0 END
  FROM orders o
 WHERE o.id = i.order_id AND o.status IN ('SHIPPED', 'DELIVERED');
UPDATE order_items i SET cancelled_quantity = i.quantity
  FROM orders o
 WHERE o.id = i.order_id AND o.status = 'CANCELLED' AND i.unit_price IS NOT NULL;
INSERT INTO fulfilments (id, order_id, status, carrier, tracking_number, tracking_url, shipped_at,
                         delivered_at)
SELECT gen_random_uuid(), o.id, CASE WHEN o.status = 'DELIVERED' THEN 'DELIVERED' ELSE 'SHIPPED' END::fulfilment_status,
       o.carrier, o.tracking_number, o.tracking_url,
       coalesce((SELECT e.at FROM order_events e WHERE e.order_id = o.id AND e.to_status = 'SHIPPED'), o.updated_at),
       CASE WHEN o.status = 'DELIVERED' THEN coalesce(
           (SELECT e.at FROM order_events e WHERE e.order_id = o.id AND e.to_status = 'DELIVERED'), o.updated_at) END
  FROM orders o
 WHERE o.status IN ('SHIPPED', 'DELIVERED');
INSERT INTO fulfilment_lines (fulfilment_id, order_id, product_id, quantity)
SELECT f.id, i.order_id, i.product_id, i.quantity
  FROM fulfilments f JOIN order_items i ON i.order_id = f.order_id;

-- The order event streams read shipments and returns beside status and refund changes, in
-- one sequence of entry ids (`Last-Event-ID`).
CREATE OR REPLACE VIEW timeline_entries AS
    SELECT e.id, e.order_id, 'status' AS kind, e.from_status, e.to_status,
           NULL::uuid AS refund_id, NULL::refund_status AS refund_status,
           NULL::bigint AS amount, NULL::text AS currency, NULL::text AS payment_reference,
           e.at, e.actor, e.reason, NULL::uuid AS part_id, NULL::text AS part_status
      FROM order_events e
    UNION ALL
    SELECT r.requested_entry_id, r.order_id, 'refund', NULL, NULL, r.id,
           CASE WHEN r.settled_at IS NULL THEN r.status ELSE 'REQUESTED' END, r.amount,
           r.currency, r.payment_reference, r.requested_at, r.actor,
           CASE WHEN r.settled_at IS NULL THEN coalesce(r.failure_reason, r.reason)
                ELSE r.reason END, NULL, NULL
      FROM refunds r
    UNION ALL
    SELECT r.settled_entry_id, r.order_id, 'refund', NULL, NULL, r.id, r.status, r.amount,
           r.currency, r.payment_reference, r.settled_at, 'system:payments', r.failure_reason,
           NULL, NULL
      FROM refunds r
     WHERE r.settled_entry_id IS NOT NULL
    UNION ALL
    SELECT f.shipped_entry_id, f.order_id, 'fulfilment', NULL, NULL, NULL, NULL, NULL, NULL,
           NULL, f.shipped_at, f.actor, NULL, f.id, 'SHIPPED'
      FROM fulfilments f
     WHERE f.shipped_entry_id IS NOT NULL
    UNION ALL
    SELECT f.delivered_entry_id, f.order_id, 'fulfilment', NULL, NULL, NULL, NULL, NULL, NULL,
           NULL, f.delivered_at, f.delivered_by, NULL, f.id, 'DELIVERED'
      FROM fulfilments f
     WHERE f.delivered_entry_id IS NOT NULL
    UNION ALL
    SELECT r.requested_entry_id, r.order_id, 'return', NULL, NULL, NULL, NULL, NULL, NULL,
           NULL, r.requested_at, r.actor, r.reason, r.id, 'REQUESTED'
      FROM returns r
    UNION ALL
    SELECT r.decided_entry_id, r.order_id, 'return', NULL, NULL, NULL, NULL, NULL, NULL,
           NULL, r.decided_at, r.decided_by, r.rejection_reason, r.id, r.status::text
      FROM returns r
     WHERE r.decided_entry_id IS NOT NULL;
