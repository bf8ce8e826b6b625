-- Each change of a refund is an entry of its order's timeline, beside the status changes: its
-- id is drawn from the status entries' sequence, so one id orders both kinds. Changes of one
-- order are made under its row lock, so their ids grow in the order they were committed, and
-- the order event streams resume after any entry of either kind (`Last-Event-ID`).

ALTER TABLE refunds
    ADD COLUMN requested_entry_id bigint,
    ADD COLUMN settled_entry_id bigint;

-- Refunds recorded before: ids in the order of their changes.
WITH changes AS (
    SELECT id, 'requested' AS change, requested_at AS at FROM refunds
    UNION ALL
    SELECT id, 'settled', settled_at FROM refunds WHERE settled_at IS NOT NULL
), numbered AS (
    SELECT id, change, nextval('order_events_id_seq') AS entry_id
      FROM (SELECT * FROM changes ORDER BY at, change) ordered
)
UPDATE refunds r
   SET requested_entry_id = (SELECT n.entry_id FROM numbered n
                              WHERE n.id = r.id AND n.change = 'requested'),
       settled_entry_id = (SELECT n.entry_id FROM numbered n
                            WHERE n.id = r.id AND n.change = 'settled');

ALTER TABLE refunds
    ALTER COLUMN requested_entry_id SET DEFAULT nextval('order_events_id_seq'),
    ALTER COLUMN requested_entry_id SET NOT NULL,
    ADD CONSTRAINT refunds_settled_entry CHECK ((settled_at IS NULL) = (settled_entry_id IS NULL));

CREATE UNIQUE INDEX refunds_requested_entry ON refunds (requested_entry_id);
CREATE UNIQUE INDEX refunds_settled_entry ON refunds (settled_entry_id);

-- The timeline, both kinds of entry, by id: what the order event streams replay.
CREATE VIEW timeline_entries AS
    SELECT e.id, e.order_id, 'status' AS kind, e.from_status, e.to_status,
           NULL::uuid AS refund_id, NULL::refund_status AS refund_status,
           NULL::bigint AS amount, NULL::text AS currency, NULL::text AS payment_reference,
           e.at, e.actor, e.reason
      FROM order_events e
    UNION ALL
    SELECT r.requested_entry_id, r.order_id, 'refund', NULL, NULL, r.id, 'REQUESTED', r.amount,
           r.currency, r.payment_reference, r.requested_at, r.actor, r.reason
      FROM refunds r
    UNION ALL
    SELECT r.settled_entry_id, r.order_id, 'refund', NULL, NULL, r.id, r.status, r.amount,
           r.currency, r.payment_reference, r.settled_at, 'system:payments', r.failure_reason
      FROM refunds r
     WHERE r.settled_entry_id IS NOT NULL;
