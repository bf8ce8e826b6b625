-- One order as one row, for every read of whole orders (`api/src/orders/repo.rs`): its lines,
-- timeline, payments, refunds, shipments and returns aggregated as JSON arrays, so one
-- statement reads whole orders (the lines through `order_items`' primary key, the timeline
-- through `order_events`' `(order_id, to_status)` index). A plain view: PostgreSQL inlines it,
-- so a list's predicates on `orders` still choose that table's indexes.
CREATE VIEW order_documents AS
SELECT o.id, o.user_id, o.status, o.total, o.currency,
        o.rejection_reason, o.created_at, o.updated_at, o.shipping_address, o.carrier,
        o.tracking_number, o.tracking_url,
        COALESCE((SELECT json_agg(json_build_object(
                      'product_id', i.product_id, 'name', i.name, 'unit_price', i.unit_price,
                      'quantity', i.quantity, 'subtotal', i.subtotal,
                      'fulfilled_quantity', i.fulfilled_quantity,
                      'cancelled_quantity', i.cancelled_quantity,
                      'delivered_quantity', i.delivered_quantity,
                      'returned_quantity', i.returned_quantity) ORDER BY i.line_no)
                    FROM order_items i WHERE i.order_id = o.id), '[]') AS items,
        COALESCE((SELECT json_agg(json_build_object(
                      'from_status', e.from_status, 'to_status', e.to_status, 'at', e.at,
                      'actor', e.actor, 'reason', e.reason) ORDER BY e.at, e.id)
                    FROM order_events e WHERE e.order_id = o.id), '[]') AS events,
        o.amount_paid, o.amount_refunded,
        COALESCE((SELECT json_agg(json_build_object(
                      'provider_reference', p.provider_reference, 'kind', p.kind,
                      'amount', p.amount, 'currency', p.currency, 'outcome', p.outcome,
                      'note', p.note, 'received_at', p.received_at)
                      ORDER BY p.received_at, p.provider_reference)
                    FROM payments p WHERE p.order_id = o.id), '[]') AS payments,
        COALESCE((SELECT json_agg(json_build_object(
                      'id', r.id, 'order_id', r.order_id, 'amount', r.amount,
                      'currency', r.currency, 'reason', r.reason, 'status', r.status,
                      'payment_reference', r.payment_reference, 'actor', r.actor,
                      'requested_at', r.requested_at, 'settled_at', r.settled_at,
                      'provider_reference', r.provider_reference,
                      'failure_reason', r.failure_reason) ORDER BY r.requested_at, r.id)
                    FROM refunds r WHERE r.order_id = o.id), '[]') AS refunds,
        COALESCE((SELECT json_agg(json_build_object(
                      'id', f.id, 'status', f.status, 'shipped_at', f.shipped_at,
                      'delivered_at', f.delivered_at,
                      'shipment', CASE WHEN f.carrier IS NULL THEN NULL ELSE json_build_object(
                          'carrier', f.carrier, 'tracking_number', f.tracking_number,
                          'tracking_url', f.tracking_url) END,
                      'lines', (SELECT json_agg(json_build_object(
                                    'product_id', l.product_id, 'quantity', l.quantity)
                                    ORDER BY l.product_id)
                                  FROM fulfilment_lines l WHERE l.fulfilment_id = f.id))
                      ORDER BY f.shipped_at, f.id)
                    FROM fulfilments f WHERE f.order_id = o.id), '[]') AS fulfilments,
        COALESCE((SELECT json_agg(json_build_object(
                      'id', r.id, 'status', r.status, 'reason', r.reason,
                      'requested_at', r.requested_at, 'decided_at', r.decided_at,
                      'rejection_reason', r.rejection_reason, 'refund_id', r.refund_id,
                      'lines', (SELECT json_agg(json_strip_nulls(json_build_object(
                                    'product_id', l.product_id, 'quantity', l.quantity,
                                    'restock', l.restock)) ORDER BY l.product_id)
                                  FROM return_lines l WHERE l.return_id = r.id))
                      ORDER BY r.requested_at, r.id)
                    FROM returns r WHERE r.order_id = o.id), '[]') AS returns,
        COALESCE((SELECT json_agg(p ORDER BY p.at, p.id)
                    FROM (SELECT 'fulfilment' AS kind, f.id, 'SHIPPED' AS status,
                                 f.shipped_at AS at, f.actor, NULL AS reason
                            FROM fulfilments f WHERE f.order_id = o.id AND f.actor IS NOT NULL
                          UNION ALL
                          SELECT 'fulfilment', f.id, 'DELIVERED', f.delivered_at, f.delivered_by,
                                 NULL
                            FROM fulfilments f
                           WHERE f.order_id = o.id AND f.delivered_by IS NOT NULL
                          UNION ALL
                          SELECT 'return', r.id, 'REQUESTED', r.requested_at, r.actor, r.reason
                            FROM returns r WHERE r.order_id = o.id
                          UNION ALL
                          SELECT 'return', r.id, r.status::text, r.decided_at, r.decided_by,
                                 r.rejection_reason
                            FROM returns r WHERE r.order_id = o.id AND r.decided_at IS NOT NULL
                         ) p), '[]') AS parts
  FROM orders o;
