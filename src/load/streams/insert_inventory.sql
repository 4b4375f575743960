-- A file's new inventory updates (an update_id loaded before, or earlier in the file, is a
-- duplicate), then each (product, warehouse) they touch moved to its latest update by
-- (event_time, update_id), unless the level already holds a later one. Keys in order, so two
-- concurrent loads lock the levels they share in the same order. Returns the updates inserted.
WITH new AS (
    INSERT INTO streaming.inventory_updates
        (update_id, event_time, product_id, product_name, warehouse, stock_change, current_stock,
         file_id)
    SELECT id, t, p, name, w, change, stock, $8
    FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::int[],
                $7::int[]) AS x(id, t, p, name, w, change, stock)
    ON CONFLICT (update_id) DO NOTHING
    RETURNING update_id, event_time, product_id, warehouse, current_stock
), latest AS (
    SELECT DISTINCT ON (product_id, warehouse)
           product_id, warehouse, current_stock, event_time, update_id
    FROM new
    ORDER BY product_id, warehouse, event_time DESC, update_id DESC
), moved AS (
    INSERT INTO streaming.stock_levels AS s (product_id, warehouse, current_stock, as_of, update_id)
    SELECT product_id, warehouse, current_stock, event_time, update_id
    FROM latest ORDER BY product_id, warehouse
    ON CONFLICT (product_id, warehouse) DO UPDATE
        SET current_stock = EXCLUDED.current_stock, as_of = EXCLUDED.as_of,
            update_id = EXCLUDED.update_id
        WHERE (EXCLUDED.as_of, EXCLUDED.update_id) > (s.as_of, s.update_id)
    RETURNING 1
)
SELECT count(*) FROM new
