-- A paid order shipped in part: some of its quantities fulfilled, some left. On its own
-- migration, since a new enum value cannot be used in the transaction that adds it.
ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'PARTIALLY_SHIPPED' AFTER 'PAID';
