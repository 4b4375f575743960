-- low_stock (src/load/alerts/stock.rs): the stock levels an inventory file moved, against the
-- threshold. $1 file_id, $2 threshold (units), $3 the parameters, $4 product ids and $5
-- warehouses of the file's updates. The subject is 'PRODUCT@WAREHOUSE'.
WITH touched AS (
    SELECT DISTINCT p, w FROM unnest($4::text[], $5::text[]) AS t(p, w)
), judged AS (
    SELECT s.product_id || '@' || s.warehouse AS subject, s.current_stock,
           s.current_stock < $2 AS breached
    FROM touched t JOIN streaming.stock_levels s ON s.product_id = t.p AND s.warehouse = t.w
), raised AS (
    INSERT INTO streaming.alerts AS a (kind, subject, observed, baseline, expected_low,
                                      expected_high, rule, parameters, file_id)
    SELECT 'low_stock', subject, current_stock, NULL, $2, NULL,
           'the current stock of the product in the warehouse is below the threshold', $3, $1
    FROM judged WHERE breached ORDER BY subject
    ON CONFLICT (kind, subject) WHERE resolved_at IS NULL DO NOTHING
    RETURNING a.kind, a.subject, a.observed, a.baseline, a.expected_low, a.expected_high
), resolved AS (
    UPDATE streaming.alerts a SET resolved_at = now(), resolved_by = $1
    FROM judged j
    WHERE a.kind = 'low_stock' AND a.subject = j.subject AND a.resolved_at IS NULL
      AND NOT j.breached
    RETURNING a.kind, a.subject
)
SELECT true, kind, subject, observed::text, baseline::text, expected_low::text,
       expected_high::text FROM raised
UNION ALL
SELECT false, kind, subject, NULL, NULL, NULL, NULL FROM resolved
