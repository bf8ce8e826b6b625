-- Reads that stay flat as the order tables grow to millions of rows: each list reads its
-- page through an index in its own order, never by sorting or filtering the whole table.

-- GET /admin/payments, oldest first, keyset pages: every payment, and by outcome (the refund
-- queue among them). Without these, each page sorted every payment. The earlier index of the
-- refund queue is covered by the second.
CREATE INDEX payments_received ON payments (received_at, provider_reference);
CREATE INDEX payments_outcome_received ON payments (outcome, received_at, provider_reference);
DROP INDEX payments_refund_required;
