-- Correlation ids are bounded where they enter (a client's X-Request-Id, a message from the
-- bus): 1 to 128 characters of letters, digits and - . _ : / + = @ (common::correlation).
-- The column holds no other. Ids stored before the bound are replaced by their MD5 (32 hex
-- digits), so orders that shared one still share one; their updated_at is left as it was.
ALTER TABLE orders DISABLE TRIGGER orders_touch;
UPDATE orders SET correlation_id = md5(correlation_id)
 WHERE correlation_id !~ '^[A-Za-z0-9._:/+=@-]{1,128}$';
ALTER TABLE orders ENABLE TRIGGER orders_touch;

ALTER TABLE orders ADD CONSTRAINT orders_correlation_id_bounded
    CHECK (correlation_id ~ '^[A-Za-z0-9._:/+=@-]{1,128}$');
