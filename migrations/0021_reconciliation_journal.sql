-- Reconciliation at constant cost.
--
-- The conservation checks (docs/architecture.md, "Invariants") compared each product with the
-- sum of all its ledger entries and reservations, and each order with all its payments and
-- refunds: a cost that grew with the store's history. Instead, every change of those rows
-- appends its effect in the same transaction, by statement triggers (so a change made by hand
-- in SQL is counted as well as the workers' own):
--
--   * `stock_journal`: per product, how much the ledger's adjustments, its restocked returns
--     and the held reservations (`reserved` or `committed`) moved. The reconciliation folds the
--     journal into `stock_balances` and compares the balances with `products.stock`.
--   * `orders_to_verify`: the orders whose status, money, lines, reservations, payments or
--     refunds changed. The reconciliation verifies those and forgets the ones that add up; an
--     order in drift stays listed until it is put right.
--
-- A report thus reads the catalogue and what changed since the previous report. Both journals
-- are append-only heaps without indexes: the writers' cost is one small insert per statement,
-- and the reconciliation empties them (common/src/conservation.rs).

CREATE TABLE stock_balances (
    product_id uuid PRIMARY KEY REFERENCES products (id) ON DELETE CASCADE,
    -- Σ of the ledger's entries of kind `adjustment`.
    adjusted   int8 NOT NULL DEFAULT 0,
    -- Σ of the ledger's entries of kind `return`.
    restocked  int8 NOT NULL DEFAULT 0,
    -- Σ of the quantities of reservations `reserved` or `committed`.
    held       int8 NOT NULL DEFAULT 0
);

CREATE TABLE stock_journal (
    product_id uuid NOT NULL,
    adjusted   int8 NOT NULL DEFAULT 0,
    restocked  int8 NOT NULL DEFAULT 0,
    held       int8 NOT NULL DEFAULT 0
);

CREATE TABLE orders_to_verify (
    order_id uuid NOT NULL
);

-- Both journals are emptied by every check: autovacuum takes them back as soon as a thousand
-- rows are dead, whatever their size was, so a check never scans what an earlier one deleted.
ALTER TABLE stock_journal SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);
ALTER TABLE orders_to_verify SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);

CREATE FUNCTION reservations_journal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A new reservation moves the product's balance; the order it belongs to is new too and
    -- holds what it was placed with, so only later changes list the order.
    IF TG_OP = 'INSERT' THEN
        INSERT INTO stock_journal (product_id, held)
        SELECT product_id, sum(quantity) FROM new_rows WHERE state <> 'released'
         GROUP BY product_id;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO stock_journal (product_id, held)
        SELECT product_id, sum(q) FROM (
            SELECT product_id, quantity AS q FROM new_rows WHERE state <> 'released'
            UNION ALL
            SELECT product_id, -quantity FROM old_rows WHERE state <> 'released') c
         GROUP BY product_id HAVING sum(q) <> 0;
        INSERT INTO orders_to_verify (order_id)
        SELECT order_id FROM new_rows UNION SELECT order_id FROM old_rows;
    ELSE
        INSERT INTO stock_journal (product_id, held)
        SELECT product_id, -sum(quantity) FROM old_rows WHERE state <> 'released'
         GROUP BY product_id;
        INSERT INTO orders_to_verify (order_id) SELECT DISTINCT order_id FROM old_rows;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER reservations_journal_insert AFTER INSERT ON reservations
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION reservations_journal();
CREATE TRIGGER reservations_journal_update AFTER UPDATE ON reservations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION reservations_journal();
CREATE TRIGGER reservations_journal_delete AFTER DELETE ON reservations
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION reservations_journal();

CREATE FUNCTION stock_adjustments_journal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO stock_journal (product_id, adjusted, restocked)
        SELECT product_id, COALESCE(sum(delta) FILTER (WHERE kind = 'adjustment'), 0),
               COALESCE(sum(delta) FILTER (WHERE kind = 'return'), 0)
          FROM new_rows GROUP BY product_id;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO stock_journal (product_id, adjusted, restocked)
        SELECT product_id, -COALESCE(sum(delta) FILTER (WHERE kind = 'adjustment'), 0),
               -COALESCE(sum(delta) FILTER (WHERE kind = 'return'), 0)
          FROM old_rows GROUP BY product_id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER stock_adjustments_journal_insert AFTER INSERT ON stock_adjustments
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stock_adjustments_journal();
CREATE TRIGGER stock_adjustments_journal_update AFTER UPDATE ON stock_adjustments
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stock_adjustments_journal();
CREATE TRIGGER stock_adjustments_journal_delete AFTER DELETE ON stock_adjustments
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stock_adjustments_journal();

-- Orders: a change of status or money lists the order; a new order only when it arrives with
-- money (placement records none).
CREATE FUNCTION orders_journal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO orders_to_verify (order_id)
        SELECT id FROM new_rows WHERE amount_paid <> 0 OR amount_refunded <> 0;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO orders_to_verify (order_id)
        SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id
         WHERE (n.status, n.amount_paid, n.amount_refunded)
               IS DISTINCT FROM (o.status, o.amount_paid, o.amount_refunded);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER orders_journal_insert AFTER INSERT ON orders
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION orders_journal();
CREATE TRIGGER orders_journal_update AFTER UPDATE ON orders
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION orders_journal();

-- Lines: what was ordered and what was cancelled of it decide what an order should hold.
CREATE FUNCTION order_items_journal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO orders_to_verify (order_id)
    SELECT DISTINCT n.order_id FROM new_rows n
      JOIN old_rows o ON o.order_id = n.order_id AND o.product_id = n.product_id
     WHERE (n.quantity, n.cancelled_quantity) IS DISTINCT FROM (o.quantity, o.cancelled_quantity);
    RETURN NULL;
END $$;

CREATE TRIGGER order_items_journal_update AFTER UPDATE ON order_items
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION order_items_journal();

-- Payments and refunds: any change lists the order they belong to.
CREATE FUNCTION money_rows_journal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO orders_to_verify (order_id) SELECT DISTINCT order_id FROM new_rows;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO orders_to_verify (order_id)
        SELECT order_id FROM new_rows UNION SELECT order_id FROM old_rows;
    ELSE
        INSERT INTO orders_to_verify (order_id) SELECT DISTINCT order_id FROM old_rows;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER payments_journal_insert AFTER INSERT ON payments
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION money_rows_journal();
CREATE TRIGGER payments_journal_update AFTER UPDATE ON payments
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION money_rows_journal();
CREATE TRIGGER payments_journal_delete AFTER DELETE ON payments
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION money_rows_journal();
CREATE TRIGGER refunds_journal_insert AFTER INSERT ON refunds
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION money_rows_journal();
CREATE TRIGGER refunds_journal_update AFTER UPDATE ON refunds
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION money_rows_journal();
CREATE TRIGGER refunds_journal_delete AFTER DELETE ON refunds
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION money_rows_journal();

-- The balances as the whole history gives them, in place of the running ones, and every order
-- listed for the next check: run once here (nothing was verified under this scheme yet, so the
-- first report after this migration reads them all, once), and by a check from history
-- (`?full=true`) after rows were changed with the triggers off. Run inside the caller's
-- transaction: what commits after its snapshot stays in the journal.
CREATE FUNCTION stock_balances_from_history() RETURNS void LANGUAGE sql AS $$
    DELETE FROM stock_journal;
    DELETE FROM stock_balances;
    INSERT INTO stock_balances (product_id, adjusted, restocked, held)
    SELECT p.id, COALESCE(a.adjusted, 0), COALESCE(a.restocked, 0), COALESCE(h.held, 0)
      FROM products p
      LEFT JOIN (SELECT product_id,
                        sum(delta) FILTER (WHERE kind = 'adjustment') AS adjusted,
                        sum(delta) FILTER (WHERE kind = 'return') AS restocked
                   FROM stock_adjustments GROUP BY product_id) a ON a.product_id = p.id
      LEFT JOIN (SELECT product_id, sum(quantity) AS held
                   FROM reservations WHERE state <> 'released' GROUP BY product_id) h
             ON h.product_id = p.id;
    INSERT INTO orders_to_verify (order_id) SELECT id FROM orders;
$$;

SELECT stock_balances_from_history();
