-- price_outlier (src/load/alerts/prices.rs): the file's products against their typical price
-- (streaming.product_prices), then the file's median joins a product's samples when the
-- product has too few or its price moved.
-- $1 file_id, $2 product ids (sorted), $3 the file's median, $4 lowest and $5 highest price
-- per product, $6 factor, $7 samples a product needs to be judged, $8 samples kept,
-- $9 the parameters as recorded with an alert, $10 how far (a share of the typical price) a
-- median must be to be recorded.
-- Result (common to every check): raised, kind, subject, observed, baseline, expected_low,
-- expected_high.
WITH file AS (
    SELECT * FROM unnest($2::text[], $3::float8[], $4::float8[], $5::float8[])
        AS f(product_id, median, low, high)
), judged AS (
    SELECT f.product_id, f.median, p.typical, coalesce(cardinality(p.recent), 0) AS samples,
           CASE WHEN cardinality(p.recent) >= $7::bigint THEN
               CASE WHEN f.high > p.typical * $6 THEN f.high
                    WHEN f.low < p.typical / $6 THEN f.low END
           END AS outlier
    FROM file f LEFT JOIN streaming.product_prices p ON p.product_id = f.product_id
), raised AS (
    INSERT INTO streaming.alerts AS a (kind, subject, observed, baseline, expected_low,
                                      expected_high, rule, parameters, file_id)
    SELECT 'price_outlier', product_id, outlier::numeric, typical::numeric,
           (typical / $6)::numeric, (typical * $6)::numeric,
           'a price of the product in the file is outside [typical / factor, typical * factor]; '
           'typical = the median of its last recorded file median prices', $9, $1
    FROM judged WHERE outlier IS NOT NULL ORDER BY product_id
    ON CONFLICT (kind, subject) WHERE resolved_at IS NULL DO NOTHING
    RETURNING a.kind, a.subject, a.observed, a.baseline, a.expected_low, a.expected_high
), resolved AS (
    UPDATE streaming.alerts a SET resolved_at = now(), resolved_by = $1
    FROM judged j
    WHERE a.kind = 'price_outlier' AND a.resolved_at IS NULL AND a.subject = j.product_id
      AND j.samples >= $7::bigint AND j.outlier IS NULL
    RETURNING a.kind, a.subject
), history AS (
    INSERT INTO streaming.product_prices AS p (product_id, recent, typical, file_id)
    SELECT product_id, ARRAY[median], median, $1 FROM judged
    WHERE samples < $7::bigint OR abs(median - typical) > $10 * typical
    ORDER BY product_id
    ON CONFLICT (product_id) DO UPDATE
    SET recent = (p.recent || excluded.recent)[greatest(1, cardinality(p.recent) + 2 - $8):],
        typical = (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(
            (p.recent || excluded.recent)[greatest(1, cardinality(p.recent) + 2 - $8):]) AS x),
        file_id = excluded.file_id, updated_at = now()
)
SELECT true, kind, subject, observed::text, baseline::text, expected_low::text,
       expected_high::text FROM raised
UNION ALL
SELECT false, kind, subject, NULL, NULL, NULL, NULL FROM resolved
