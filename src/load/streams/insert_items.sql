-- The lines of the transactions this file inserted (never of one loaded before).
INSERT INTO streaming.transaction_items
    (transaction_id, line_number, product_id, product_name, price, quantity, item_total, warehouse)
SELECT id, n, p, name, price::numeric, q, total::numeric, w
FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::int[], $7::text[],
            $8::text[]) AS x(id, n, p, name, price, q, total, w)
