-- price_outlier (src/load/alerts/prices.rs): the file's products against the median of the
-- median prices of their last files, then the file's own medians join that history.
-- $1 file_id, $2 product ids (sorted), $3 the file's median, $4 lowest and $5 highest price
-- per product, $6 factor, $7 files of history a product needs to be judged, $8 files kept,
-- $9 the parameters as recorded with an alert.
-- Result (common to every check): raised, kind, subject, observed, baseline, expected_low,
-- expected_high.
WITH file AS (
    SELECT * FROM unnest($2::text[], $3::float8[], $4::float8[], $5::float8[])
        AS f(product_id, median, low, high)
), judged AS (
    SELECT f.product_id, f.median, b.baseline,
           CASE WHEN f.high > b.baseline * $6 THEN f.high
                WHEN f.low < b.baseline / $6 THEN f.low END AS outlier
    FROM file f
    JOIN streaming.product_prices p ON p.product_id = f.product_id
    CROSS JOIN LATERAL (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) AS baseline
                        FROM unnest(p.recent) AS x HAVING count(*) >= $7) b
), raised AS (
    INSERT INTO streaming.alerts AS a (kind, subject, observed, baseline, expected_low,
                                      expected_high, rule, parameters, file_id)
    SELECT 'price_outlier', product_id, outlier::numeric, baseline::numeric,
           (baseline / $6)::numeric, (baseline * $6)::numeric,
           'a price of the product in the file is outside [baseline / factor, baseline * factor]; '
           'baseline = the median of the median prices of its last files', $9, $1
    FROM judged WHERE outlier IS NOT NULL ORDER BY product_id
    ON CONFLICT (kind, subject) WHERE resolved_at IS NULL DO NOTHING
    RETURNING a.kind, a.subject, a.observed, a.baseline, a.expected_low, a.expected_high
), resolved AS (
    UPDATE streaming.alerts a SET resolved_at = now(), resolved_by = $1
    FROM judged j
    WHERE a.kind = 'price_outlier' AND a.resolved_at IS NULL AND a.subject = j.product_id
      AND j.outlier IS NULL
    RETURNING a.kind, a.subject
), history AS (
    INSERT INTO streaming.product_prices AS p (product_id, recent, file_id)
    SELECT product_id, ARRAY[median], $1 FROM file ORDER BY product_id
    ON CONFLICT (product_id) DO UPDATE
    SET recent = (p.recent || excluded.recent)[greatest(1, cardinality(p.recent) + 2 - $8):],
        file_id = excluded.file_id, updated_at = now()
)
SELECT true, kind, subject, observed::text, baseline::text, expected_low::text,
       expected_high::text FROM raised
UNION ALL
SELECT false, kind, subject, NULL, NULL, NULL, NULL FROM resolved
