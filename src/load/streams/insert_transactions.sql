-- A file's transactions; those whose id is loaded already are left as they are. Returns the
-- ids inserted, whose lines are then inserted too (load/streams/transactions.rs).
INSERT INTO streaming.transactions
    (transaction_id, transaction_time, user_id, payment_method, tax_amount, shipping_cost,
     total_amount, shipping_address, line_count, file_id)
SELECT id, t, u, pm, tax::numeric, ship::numeric, total::numeric, addr, lines, $10
FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::text[], $8::text[], $9::int[]) AS x(id, t, u, pm, tax, ship, total, addr, lines)
ORDER BY id
ON CONFLICT (transaction_id) DO NOTHING
RETURNING transaction_id
